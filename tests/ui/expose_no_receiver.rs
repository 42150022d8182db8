struct Counter;

#[tether::expose]
impl Counter {
    #[method]
    fn create() -> i64 {
        1
    }
}

fn main() {}
