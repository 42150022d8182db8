//! Boxing: a typical struct to a `tether::Value` and back (`to_value`,
//! `from_value`), with serde_json's `to_value`/`from_value` (the same job
//! for a JSON tree) as the reference.
//!
//! Run: `cargo bench -p tether-bench --bench boxing`.

use criterion::{criterion_group, criterion_main, Criterion};
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    sku: String,
    quantity: u32,
    price: f64,
}

/// A typical argument: a few scalars, a string, an option, a short list
/// of small structs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    paid: bool,
    note: Option<String>,
    items: Vec<Item>,
}

fn order() -> Order {
    Order {
        id: 48_213,
        customer: "Ada Lovelace".into(),
        paid: true,
        note: Some("leave at the door".into()),
        items: (0..5)
            .map(|i| Item {
                sku: format!("SKU-{i:05}"),
                quantity: i + 1,
                price: 9.99 * (i + 1) as f64,
            })
            .collect(),
    }
}

fn boxing(c: &mut Criterion) {
    let o = order();
    let v = tether::to_value(&o).unwrap();
    assert_eq!(tether::from_value::<Order>(v.clone()).unwrap(), o);
    let j = serde_json::to_value(&o).unwrap();

    let mut g = c.benchmark_group("boxing");
    g.bench_function("tether_to_value/order", |b| {
        b.iter(|| tether::to_value(black_box(&o)).unwrap())
    });
    g.bench_function("tether_from_value/order", |b| {
        b.iter(|| tether::from_value::<Order>(black_box(v.clone())).unwrap())
    });
    g.bench_function("clone_value/order", |b| b.iter(|| black_box(&v).clone()));
    g.bench_function("serde_json_to_value/order", |b| {
        b.iter(|| serde_json::to_value(black_box(&o)).unwrap())
    });
    g.bench_function("serde_json_from_value/order", |b| {
        b.iter(|| serde_json::from_value::<Order>(black_box(j.clone())).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = boxing
}
criterion_main!(benches);
