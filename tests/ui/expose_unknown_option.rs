struct Calc;

#[tether::expose(foo = 1)]
impl Calc {
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

fn main() {}
