#[tether::service]
trait Calc {
    fn add(&self, a: i64, b: i64) -> tether::Result<i64>;
}

fn main() {}
