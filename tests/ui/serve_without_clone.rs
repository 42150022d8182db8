struct Calc;

#[tether::expose]
impl Calc {
    #[method]
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

async fn run(server: tether::Server) -> tether::Result<()> {
    server.serve(Calc).await
}

fn main() {
    let _ = run;
}
