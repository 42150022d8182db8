struct Stats;

#[tether::expose]
impl Stats {
    #[method]
    fn total(&self, #[rest] things: Option<f64>) -> f64 {
        things.unwrap_or(0.0)
    }
}

fn main() {}
