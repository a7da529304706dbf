//! Measures pod create -> Ready on the local cluster and prints the figures (no timed
//! assertion). Run: `cargo test -p archivist-e2e --test kubelet_bench -- --ignored --nocapture`.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use support::{pod_ready, wait_for, TestNamespace};

/// Pods measured, one after another.
const PODS: usize = 10;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn pod_create_to_ready() {
    let ns = TestNamespace::create("bench").await;
    let pods = ns.api::<Pod>();
    let mut timings: Vec<Duration> = Vec::with_capacity(PODS);
    for i in 0..PODS {
        let name = format!("bench-{i}");
        let pod: Pod = serde_yaml::from_str(&format!(
            "metadata: {{name: {name}}}\nspec:\n  containers: [{{name: c, image: ignored, command: [sleep, infinity]}}]\n"
        ))
        .unwrap();
        let start = Instant::now();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        wait_for(&pods, &name, "Ready", pod_ready).await;
        timings.push(start.elapsed());
    }
    let mut sorted = timings.clone();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "pod create -> Ready over {PODS} pods: median {:.0} ms, min {:.0} ms, max {:.0} ms (all: {:?})",
        ms(sorted[PODS / 2]),
        ms(sorted[0]),
        ms(sorted[PODS - 1]),
        timings.iter().map(|d| ms(*d).round()).collect::<Vec<_>>()
    );
}
