struct Counter;

#[tether::expose]
impl Counter {
    #[method]
    fn bump(&mut self) {}
}

fn main() {}
