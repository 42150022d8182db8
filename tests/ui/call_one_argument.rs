async fn ask(f: tether::NetRef) -> tether::Result<tether::Value> {
    f.call(5).await
}

fn main() {
    let _ = ask;
}
