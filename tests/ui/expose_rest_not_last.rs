struct Stats;

#[tether::expose]
impl Stats {
    #[method]
    fn scaled(&self, #[rest] things: Vec<f64>, factor: f64) -> f64 {
        things.iter().sum::<f64>() * factor
    }
}

fn main() {}
