//! `GET /containerLogs/<ns>/<pod>/<container>`: the current (or previous) instance's log,
//! rendered as `kubectl logs` expects, optionally followed while the instance runs.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use k8s_openapi::jiff::Timestamp;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::mpsc;

use super::{text, Body};
use crate::sim::kubelet::logs::{self, LogOptions};
use crate::sim::kubelet::ContainerHandle;

/// How often a followed log is checked for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Serves one log request.
pub async fn handle(query: &str, handle: Arc<ContainerHandle>) -> Response<Body> {
    let options = LogOptions::from_query(query);
    let instances = handle.logs.instances();
    let wanted = if options.previous {
        instances.iter().rev().nth(1)
    } else {
        instances.last()
    };
    let Some(&instance) = wanted else {
        let what = if options.previous {
            "previous terminated container"
        } else {
            "container"
        };
        return text(StatusCode::BAD_REQUEST, format!("{what} has no logs yet"));
    };
    let path = handle.logs.instance(instance);
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(16);
    tokio::spawn(async move {
        let Ok(mut file) = tokio::fs::File::open(&path).await else {
            return;
        };
        let mut raw = String::new();
        if file.read_to_string(&mut raw).await.is_err() {
            return;
        }
        // Only whole lines are rendered; a trailing fragment is read again when following.
        let complete = raw.rfind('\n').map_or(0, |i| i + 1);
        let mut budget = options.limit_bytes.unwrap_or(usize::MAX);
        let first = limit(
            logs::render(&raw[..complete], &options, Timestamp::now()),
            &mut budget,
        );
        if tx.send(Ok(Frame::data(Bytes::from(first)))).await.is_err()
            || !options.follow
            || budget == 0
        {
            return;
        }
        let mut offset = complete as u64;
        let running = handle.running.subscribe();
        loop {
            let still_running = running.borrow().is_some_and(|i| i.restart == instance);
            let mut chunk = String::new();
            if file.seek(std::io::SeekFrom::Start(offset)).await.is_err()
                || file.read_to_string(&mut chunk).await.is_err()
            {
                return;
            }
            let complete = chunk.rfind('\n').map_or(0, |i| i + 1);
            if complete > 0 {
                offset += complete as u64;
                let lines: String = chunk[..complete]
                    .lines()
                    .filter_map(logs::parse)
                    .map(|r| logs::render_record(&r, options.timestamps))
                    .collect();
                if tx
                    .send(Ok(Frame::data(Bytes::from(limit(lines, &mut budget)))))
                    .await
                    .is_err()
                    || budget == 0
                {
                    return;
                }
            }
            if !still_running {
                return;
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    });
    let body = StreamBody::new(tokio_stream_from(rx)).boxed();
    let mut response = Response::new(body);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    response
}

/// Cuts `text` to the remaining byte budget.
fn limit(mut text: String, budget: &mut usize) -> String {
    if text.len() > *budget {
        let mut cut = *budget;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    *budget -= text.len();
    text
}

/// An mpsc receiver as a stream.
fn tokio_stream_from<T>(mut rx: mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_bytes_on_char_boundaries() {
        let mut budget = 3;
        assert_eq!(limit("aé-b".to_string(), &mut budget), "aé");
        assert_eq!(budget, 0);
    }
}
