struct Counter;

#[tether::expose]
impl Counter {
    #[method]
    fn consume(self) -> i64 {
        1
    }
}

fn main() {}
