use std::sync::Mutex;

struct Thermostat {
    target: Mutex<f64>,
}

#[tether::expose]
impl Thermostat {
    #[getter]
    fn target(&self, unit: String) -> f64 {
        let _ = unit;
        *self.target.lock().unwrap()
    }

    #[setter]
    fn set_target(&self, value: f64, unit: String) {
        let _ = unit;
        *self.target.lock().unwrap() = value;
    }

    #[getter]
    fn reset(&self) {}
}

fn main() {}
