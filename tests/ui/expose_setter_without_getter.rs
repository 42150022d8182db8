use std::sync::Mutex;

struct Thermostat {
    target: Mutex<f64>,
}

#[tether::expose]
impl Thermostat {
    #[setter]
    fn set_target(&self, value: f64) {
        *self.target.lock().unwrap() = value;
    }
}

fn main() {}
