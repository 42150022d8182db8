struct Calc;

#[tether::expose]
impl Calc {
    #[getter(add)]
    fn get_add(&self) -> i64 {
        1
    }

    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

fn main() {}
