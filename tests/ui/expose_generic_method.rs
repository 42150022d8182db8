struct Echo;

#[tether::expose]
impl Echo {
    #[method]
    fn echo<T: serde::Serialize>(&self, value: T) -> T {
        value
    }
}

fn main() {}
