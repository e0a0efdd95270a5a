//! The work queue, behind one trait: [`LocalQueue`] (embedded `serve`: in memory, refilled
//! from the job table at start-up) and [`NatsQueue`] (a JetStream work-queue stream with one
//! durable pull consumer shared by every worker: explicit acks, ack-wait redelivery, and a
//! delivery limit one above the service's `max_deliver`, so that the worker that receives the
//! extra delivery can mark the job failed with a reason instead of the message silently
//! stopping).

use super::store::{BoxFut, StoreError};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

fn se(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// One delivery of a job id to a worker.
pub trait Delivery: Send + Sync {
    fn job(&self) -> &str;
    /// 1 on first delivery.
    fn attempt(&self) -> u64;
    /// Done with it (result published, or the job is final).
    fn ack(&self) -> BoxFut<'_, Result<(), StoreError>>;
    /// Hand it back for another delivery after `delay`.
    fn nak(&self, delay: Duration) -> BoxFut<'_, Result<(), StoreError>>;
    /// Still working: push the redelivery deadline back.
    fn progress(&self) -> BoxFut<'_, Result<(), StoreError>>;
}

pub trait Queue: Send + Sync {
    fn push<'a>(&'a self, job: &'a str) -> BoxFut<'a, Result<(), StoreError>>;
    /// Jobs waiting or in flight.
    fn depth(&self) -> BoxFut<'_, Result<u64, StoreError>>;
    /// The next delivery, or `None` after `wait` without one.
    fn next(&self, wait: Duration) -> BoxFut<'_, Result<Option<Box<dyn Delivery>>, StoreError>>;
}

/// In-memory queue of the embedded server.
#[derive(Default)]
pub struct LocalQueue {
    inner: std::sync::Arc<LocalInner>,
}

#[derive(Default)]
struct LocalInner {
    waiting: Mutex<VecDeque<(String, u64)>>,
    in_flight: std::sync::atomic::AtomicU64,
    notify: Notify,
}

impl LocalInner {
    fn push(&self, job: String, attempt: u64) {
        if let Ok(mut q) = self.waiting.lock() {
            q.push_back((job, attempt));
        }
        self.notify.notify_one();
    }
}

struct LocalDelivery {
    job: String,
    attempt: u64,
    queue: std::sync::Arc<LocalInner>,
}

impl Delivery for LocalDelivery {
    fn job(&self) -> &str {
        &self.job
    }
    fn attempt(&self) -> u64 {
        self.attempt
    }
    fn ack(&self) -> BoxFut<'_, Result<(), StoreError>> {
        self.queue.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
    fn nak(&self, delay: Duration) -> BoxFut<'_, Result<(), StoreError>> {
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            self.queue.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            self.queue.push(self.job.clone(), self.attempt + 1);
            Ok(())
        })
    }
    fn progress(&self) -> BoxFut<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

impl Queue for LocalQueue {
    fn push<'a>(&'a self, job: &'a str) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.inner.push(job.to_string(), 1);
            Ok(())
        })
    }
    fn depth(&self) -> BoxFut<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let waiting = self.inner.waiting.lock().map_err(se)?.len() as u64;
            Ok(waiting + self.inner.in_flight.load(std::sync::atomic::Ordering::SeqCst))
        })
    }
    fn next(&self, wait: Duration) -> BoxFut<'_, Result<Option<Box<dyn Delivery>>, StoreError>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let notified = self.inner.notify.notified();
                if let Some((job, attempt)) = self.inner.waiting.lock().map_err(se)?.pop_front() {
                    self.inner.in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    return Ok(Some(Box::new(LocalDelivery {
                        job,
                        attempt,
                        queue: self.inner.clone(),
                    }) as Box<dyn Delivery>));
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Ok(None);
                }
            }
        })
    }
}

pub const STREAM: &str = "CLIFHE_JOBS";
pub const SUBJECT: &str = "clifhe.jobs";
pub const CONSUMER: &str = "clifhe-workers";

/// The JetStream work queue.
pub struct NatsQueue {
    js: async_nats::jetstream::Context,
    consumer: async_nats::jetstream::consumer::PullConsumer,
}

impl NatsQueue {
    /// Opens (creating when missing) the stream and the shared durable consumer.
    pub async fn open(js: async_nats::jetstream::Context, ack_wait: Duration, max_deliver: u64) -> Result<Self, StoreError> {
        use async_nats::jetstream::{consumer, stream};
        let s = js
            .get_or_create_stream(stream::Config {
                name: STREAM.into(),
                subjects: vec![SUBJECT.into()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                // Publishes carry the job id as Nats-Msg-Id: a retried submit enqueues once.
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(se)?;
        let cfg = consumer::pull::Config {
            durable_name: Some(CONSUMER.into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait,
            max_deliver: i64::try_from(max_deliver + 1).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let consumer = match s.get_consumer(CONSUMER).await {
            Ok(c) => c,
            Err(_) => match s.create_consumer(cfg).await {
                Ok(c) => c,
                // Another process created it in between.
                Err(_) => s.get_consumer(CONSUMER).await.map_err(se)?,
            },
        };
        Ok(Self { js, consumer })
    }
}

struct NatsDelivery {
    msg: async_nats::jetstream::Message,
    job: String,
    attempt: u64,
}

impl Delivery for NatsDelivery {
    fn job(&self) -> &str {
        &self.job
    }
    fn attempt(&self) -> u64 {
        self.attempt
    }
    fn ack(&self) -> BoxFut<'_, Result<(), StoreError>> {
        // Double ack: the server confirms, so a job is not redelivered after we think it is done
        // (a hard kill of the server can still bring one back: results are idempotent).
        Box::pin(async move { self.msg.double_ack().await.map_err(se) })
    }
    fn nak(&self, delay: Duration) -> BoxFut<'_, Result<(), StoreError>> {
        use async_nats::jetstream::AckKind;
        Box::pin(async move { self.msg.ack_with(AckKind::Nak(Some(delay))).await.map_err(se) })
    }
    fn progress(&self) -> BoxFut<'_, Result<(), StoreError>> {
        use async_nats::jetstream::AckKind;
        Box::pin(async move { self.msg.ack_with(AckKind::Progress).await.map_err(se) })
    }
}

impl Queue for NatsQueue {
    fn push<'a>(&'a self, job: &'a str) -> BoxFut<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", job);
            let ack = self
                .js
                .publish_with_headers(SUBJECT, headers, bytes::Bytes::copy_from_slice(job.as_bytes()))
                .await
                .map_err(se)?;
            ack.await.map_err(se)?;
            Ok(())
        })
    }
    fn depth(&self) -> BoxFut<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let s = self.js.get_stream(STREAM).await.map_err(se)?;
            Ok(s.cached_info().state.messages)
        })
    }
    fn next(&self, wait: Duration) -> BoxFut<'_, Result<Option<Box<dyn Delivery>>, StoreError>> {
        use futures_util::StreamExt;
        Box::pin(async move {
            // One message per fetch: a worker holds at most the job it is evaluating, so a
            // crash strands nothing else.
            let mut batch = self.consumer.fetch().max_messages(1).expires(wait).messages().await.map_err(se)?;
            match batch.next().await {
                None => Ok(None),
                Some(Err(e)) => Err(se(e)),
                Some(Ok(msg)) => {
                    let job = String::from_utf8_lossy(&msg.payload).into_owned();
                    let attempt = msg.info().map_or(1, |i| u64::try_from(i.delivered).unwrap_or(1));
                    Ok(Some(Box::new(NatsDelivery { msg, job, attempt }) as Box<dyn Delivery>))
                }
            }
        })
    }
}
