struct Calc;

#[tether::expose]
impl Calc {
    #[method]
    #[getter]
    fn value(&self) -> i64 {
        1
    }
}

fn main() {}
