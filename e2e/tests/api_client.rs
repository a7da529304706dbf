//! The operator's API clients (`archivist::kube::client`) against the real API server of the
//! local cluster (`e2e/local-cluster up`): requests and watches share one HTTP/2 connection,
//! and exec keeps its HTTP/1.1 client.

use std::time::Duration;

use anyhow::Context as _;
use archivist::kube::client::{clients, ApiClients};
use archivist_e2e::testing::kubeconfig_path;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{PostParams, WatchEvent, WatchParams};
use kube::{Api, Client};

async fn local_clients() -> anyhow::Result<ApiClients> {
    let path = kubeconfig_path();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)
        .with_context(|| format!("failed to read {} (is the local cluster up? run: e2e/local-cluster up)", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(clients(config)?)
}

/// The HTTP version `client` used for a `GET /version`.
async fn version_of(client: &Client) -> anyhow::Result<http::Version> {
    let request = http::Request::get("/version").body(Vec::new())?;
    let response = client.send(request.map(Into::into)).await?;
    anyhow::ensure!(response.status().is_success(), "GET /version answered {}", response.status());
    Ok(response.version())
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn requests_go_over_http2_and_exec_keeps_http1() -> anyhow::Result<()> {
    let clients = local_clients().await?;
    assert_eq!(version_of(&clients.api).await?, http::Version::HTTP_2, "the operator's API client negotiates h2");
    assert_eq!(version_of(&clients.exec).await?, http::Version::HTTP_11, "the exec client stays on HTTP/1.1 for the WebSocket upgrade");
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_watch_and_many_concurrent_requests_share_the_connection() {
    archivist_e2e::testing::with_namespace("h2", |_, ns| async move {
        let clients = local_clients().await?;
        let maps = Api::<ConfigMap>::namespaced(clients.api.clone(), &ns);
        let mut watch = maps.watch(&WatchParams::default().timeout(60), "0").await?.boxed();
        // 32 creates at once: over HTTP/1.1 these would need up to 32 connections.
        let creates = (0..32).map(|i| {
            let maps = maps.clone();
            async move {
                let map: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": format!("m{i}")}, "data": {"i": i.to_string()}}))?;
                maps.create(&PostParams::default(), &map).await?;
                anyhow::Ok(())
            }
        });
        futures::future::try_join_all(creates).await?;
        let mut added = std::collections::BTreeSet::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while added.len() < 32 {
            let event = tokio::time::timeout_at(deadline, watch.try_next())
                .await
                .with_context(|| format!("the watch saw {} of 32 creations in 30 s", added.len()))??
                .context("the watch ended early")?;
            if let WatchEvent::Added(map) = event {
                added.insert(map.metadata.name.unwrap_or_default());
            }
        }
        assert_eq!(version_of(&clients.api).await?, http::Version::HTTP_2);
        Ok(())
    })
    .await
}
