struct Calc;

trait Add {
    fn add(&self, a: i64, b: i64) -> i64;
}

#[tether::expose]
impl Add for Calc {
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

fn main() {}
