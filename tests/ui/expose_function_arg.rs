struct Jobs;

#[tether::expose]
impl Jobs {
    #[method]
    fn each(&self, f: impl Fn(i64) -> i64) -> i64 {
        f(1)
    }

    #[method]
    fn boxed(&self, f: Box<dyn FnMut(String)>) {
        let _ = f;
    }

    #[method]
    fn pointer(&self, f: fn() -> bool) -> bool {
        f()
    }
}

fn main() {}
