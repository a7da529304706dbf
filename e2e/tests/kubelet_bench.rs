//! Measures pod create -> Ready on the local cluster and prints the figures (no timed
//! assertion). Run: `cargo test -p archivist-e2e --test kubelet_bench -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use archivist_e2e::testing::pods::{is_ready, POD_TIMEOUT};
use archivist_e2e::testing::with_namespace;
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::Api;

/// Pods measured, one after another.
const PODS: usize = 10;

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn pod_create_to_ready() {
    with_namespace("bench", |client, ns| async move {
        let pods = Api::<Pod>::namespaced(client, &ns);
        let mut timings: Vec<Duration> = Vec::with_capacity(PODS);
        for i in 0..PODS {
            let name = format!("bench-{i}");
            let pod: Pod = serde_yaml::from_str(&format!(
                "metadata: {{name: {name}}}\nspec:\n  containers: [{{name: c, image: ignored, command: [sleep, infinity]}}]\n"
            ))?;
            let start = Instant::now();
            pods.create(&PostParams::default(), &pod).await?;
            // A watch, not polling: the figure is not rounded up to a poll interval.
            let ready = kube::runtime::wait::await_condition(pods.clone(), &name, is_ready);
            tokio::time::timeout(POD_TIMEOUT, ready).await.context("timed out waiting for Ready")??;
            timings.push(start.elapsed());
        }
        let mut sorted = timings.clone();
        sorted.sort();
        let ms = |d: Duration| (d.as_secs_f64() * 1000.0).round();
        println!(
            "pod create -> Ready over {PODS} pods: median {} ms, min {} ms, max {} ms (all: {:?})",
            ms(sorted[PODS / 2]),
            ms(sorted[0]),
            ms(sorted[PODS - 1]),
            timings.iter().map(|d| ms(*d)).collect::<Vec<_>>()
        );
        Ok(())
    })
    .await;
}
