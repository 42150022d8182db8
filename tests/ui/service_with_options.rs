#[tether::service(name = "Calculator")]
trait Calc {
    async fn add(&self, a: i64, b: i64) -> tether::Result<i64>;
}

fn main() {}
