//! Opening the scale-out backend on NATS JetStream: the object store bucket, the job table's
//! key-value bucket and the work queue, each created when missing (by whichever API replica or
//! worker comes first; creation is idempotent).
//!
//! The key-value bucket's stream is created by hand: the client's `create_key_value` queries
//! account fields that nats-server 2.9 (Debian's 2.9.10) lacks, while `get_key_value` on a
//! stream laid out as a bucket (`KV_<bucket>`, subjects `$KV.<bucket>.>`, one message per
//! subject, rollups allowed, discard new) works on every server version.

use super::queue::NatsQueue;
use super::store::{Backend, NatsJobs, NatsStore, StoreError};
use async_nats::jetstream::{self, object_store, stream};
use std::sync::Arc;
use std::time::Duration;

pub const OBJECT_BUCKET: &str = "clifhe";
pub const KV_BUCKET: &str = "clifhe_jobs";

fn se(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// Connects (retrying for up to `connect_for`) and opens every resource.
pub async fn open(url: &str, ack_wait: Duration, max_deliver: u64, connect_for: Duration) -> Result<Backend, StoreError> {
    let deadline = tokio::time::Instant::now() + connect_for;
    let client = loop {
        // The client reconnects by itself after the first connection (server restarts).
        match async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .connect(url)
            .await
        {
            Ok(c) => break c,
            Err(e) if tokio::time::Instant::now() < deadline => {
                super::worker::log("nats", format!("connect {url}: {e}; retrying"));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(se(format!("connect {url}: {e}"))),
        }
    };
    let js = jetstream::new(client);
    let blobs = match js.get_object_store(OBJECT_BUCKET).await {
        Ok(b) => b,
        Err(_) => match js
            .create_object_store(object_store::Config {
                bucket: OBJECT_BUCKET.into(),
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
        {
            Ok(b) => b,
            Err(_) => js.get_object_store(OBJECT_BUCKET).await.map_err(se)?,
        },
    };
    let kv = match js.get_key_value(KV_BUCKET).await {
        Ok(kv) => kv,
        Err(_) => {
            let created = js
                .create_stream(stream::Config {
                    name: format!("KV_{KV_BUCKET}"),
                    subjects: vec![format!("$KV.{KV_BUCKET}.>")],
                    max_messages_per_subject: 1,
                    allow_rollup: true,
                    deny_delete: true,
                    discard: stream::DiscardPolicy::New,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await;
            if let Err(e) = created {
                super::worker::log("nats", format!("creating the job bucket: {e} (another process may have made it)"));
            }
            js.get_key_value(KV_BUCKET).await.map_err(se)?
        }
    };
    let queue = NatsQueue::open(js, ack_wait, max_deliver).await?;
    Ok(Backend {
        blobs: Arc::new(NatsStore::new(blobs)),
        jobs: Arc::new(NatsJobs::new(kv)),
        queue: Arc::new(queue),
    })
}
