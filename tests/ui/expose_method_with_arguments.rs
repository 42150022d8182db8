struct Calc;

#[tether::expose]
impl Calc {
    #[method(name = "plus")]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

fn main() {}
