//! What keeps anyone who reaches the server from starving it: per-key token buckets (request
//! rates per device, joins per IP address), a cap on each device's requests in
//! progress, and one memory budget, counted in bytes, for every request body and pull page
//! held at once.
//!
//! A body is read only after its head was authenticated, only once the budget has room for
//! it (as announced by its `content-length`, or the largest allowed when it announces
//! nothing), never beyond its limit, and within a deadline. So N stalled uploads hold at most
//! the budget, never N times the largest request.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use cairn_crypto::DeviceId;
use cairn_protocol::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::storage::BlobKey;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps hold counters only: one left half-updated by a panic is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A token bucket per key: `burst` requests at once, refilled at `per_sec`.
pub(crate) struct TokenBuckets<K> {
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
    per_sec: f64,
    burst: f64,
    max_keys: usize,
}

impl<K: Hash + Eq + Clone> TokenBuckets<K> {
    /// At most `max_keys` keys are tracked; full buckets are forgotten first.
    pub(crate) fn new(per_sec: f64, burst: u32, max_keys: usize) -> Self {
        TokenBuckets {
            buckets: Mutex::new(HashMap::new()),
            per_sec,
            burst: f64::from(burst.max(1)),
            max_keys,
        }
    }

    /// Whether `key` has a token now (taking none), or how long until it has one.
    pub(crate) fn check(&self, key: &K) -> Result<(), Duration> {
        let buckets = lock(&self.buckets);
        match buckets.get(key) {
            None => Ok(()),
            Some((tokens, at)) => {
                let now = Instant::now();
                let tokens =
                    (tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
                if tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(Duration::from_secs_f64((1.0 - tokens) / self.per_sec))
                }
            }
        }
    }

    /// The whole tokens `key` has now (taking none), and how long until it has one more.
    pub(crate) fn level(&self, key: &K) -> (u32, Duration) {
        let buckets = lock(&self.buckets);
        let tokens = buckets.get(key).map_or(self.burst, |(tokens, at)| {
            (tokens + at.elapsed().as_secs_f64() * self.per_sec).min(self.burst)
        });
        let next = (tokens.floor() + 1.0 - tokens) / self.per_sec;
        // Whole tokens only: truncation is what is meant.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        (tokens as u32, Duration::from_secs_f64(next))
    }

    /// Takes one token for `key`, or says how long until one is there.
    pub(crate) fn take(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        let level = |(tokens, at): &(f64, Instant)| {
            (tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst)
        };
        let mut buckets = lock(&self.buckets);
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            let burst = self.burst;
            buckets.retain(|_, b| level(b) < burst);
            if buckets.len() >= self.max_keys {
                // Too many keys are busy at once: new ones wait until some calm down.
                return Err(Duration::from_secs_f64(1.0 / self.per_sec).max(Duration::from_secs(1)));
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert((self.burst, now));
        let tokens = level(bucket);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            Ok(())
        } else {
            *bucket = (tokens, now);
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_sec))
        }
    }
}

/// The blob uploads in progress, one at a time per blob: a status asked while its blob's
/// upload is still being stored waits for it (bounded), so the client that was cut off
/// learns exactly which chunks are kept and sends none of them again.
#[derive(Default)]
pub(crate) struct Uploads {
    /// Each blob's lock, with how many uploads and statuses hold or wait on it: the entry
    /// goes when the last of them does, however it ends (stored, refused, timed out, or
    /// dropped with its connection).
    slots: Mutex<HashMap<BlobKey, (BlobLock, usize)>>,
}

type BlobLock = Arc<tokio::sync::Mutex<()>>;

/// One blob's place in [`Uploads`], held while its upload runs.
pub(crate) struct UploadSlot<'a> {
    // Fields drop in order: the lock is released before the place is given up.
    _held: tokio::sync::OwnedMutexGuard<()>,
    _user: SlotUser<'a>,
}

/// One upload or status counted in its blob's entry, from before it waits until it ends.
struct SlotUser<'a> {
    uploads: &'a Uploads,
    key: BlobKey,
}

impl Drop for SlotUser<'_> {
    fn drop(&mut self) {
        let mut slots = lock(&self.uploads.slots);
        if let Some((_, users)) = slots.get_mut(&self.key) {
            *users -= 1;
            if *users == 0 {
                slots.remove(&self.key);
            }
        }
    }
}

impl Uploads {
    /// Waits for the blob's upload before this one (at most `wait`), then holds its place.
    pub(crate) async fn begin(
        &self,
        author: DeviceId,
        blob: [u8; 16],
        wait: Duration,
    ) -> Option<UploadSlot<'_>> {
        let key = (author, blob);
        let lock_of_blob = {
            let mut slots = lock(&self.slots);
            let (slot, users) = slots.entry(key).or_default();
            *users += 1;
            Arc::clone(slot)
        };
        // Counted from here, so a wait that times out or is dropped still gives its place up.
        let user = SlotUser { uploads: self, key };
        let held = tokio::time::timeout(wait, lock_of_blob.lock_owned())
            .await
            .ok()?;
        Some(UploadSlot {
            _held: held,
            _user: user,
        })
    }

    /// Waits (at most `wait`) until no upload of the blob is being stored.
    pub(crate) async fn settled(&self, author: DeviceId, blob: [u8; 16], wait: Duration) {
        let _ = self.begin(author, blob, wait).await;
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        lock(&self.slots).len()
    }
}

/// Who a request in progress is counted against: the device its head names, and the
/// address it came from, so that someone who knows a device's id (the office's is in every
/// admission) but not its key cannot take that device's places from elsewhere.
type Requester = (DeviceId, IpAddr);

/// How many requests each device has in progress, per address.
pub(crate) struct InFlight {
    counts: Arc<Mutex<HashMap<Requester, u32>>>,
    max: u32,
}

/// One request in progress; dropping it ends it.
pub(crate) struct InFlightGuard {
    counts: Arc<Mutex<HashMap<Requester, u32>>>,
    requester: Requester,
}

impl InFlight {
    pub(crate) fn new(max: u32) -> Self {
        InFlight {
            counts: Arc::default(),
            max,
        }
    }

    /// Counts a request of `device` from `ip`, unless it already has `max` in progress.
    pub(crate) fn enter(&self, device: DeviceId, ip: IpAddr) -> Option<InFlightGuard> {
        let requester = (device, ip);
        let mut counts = lock(&self.counts);
        let count = counts.entry(requester).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(InFlightGuard {
            counts: self.counts.clone(),
            requester,
        })
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(&self.requester) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.requester);
            }
        }
    }
}

/// What a request holds while it is served: its share of the memory budget and its place
/// among its device's requests in progress. Released when dropped; a pull page keeps it
/// until the page has been sent (or the connection dropped).
#[derive(Default)]
pub(crate) struct Hold {
    #[allow(dead_code)] // Held for its release on drop.
    pub(crate) budget: Option<OwnedSemaphorePermit>,
    pub(crate) in_flight: Option<InFlightGuard>,
}

/// A refused body this small is read and thrown away (within the drain time) whatever the
/// limit it exceeded: it costs no memory, and lets the client read the refusal.
const DRAIN_AT_LEAST: usize = 1024 * 1024;

/// The memory budget of bodies and pages in flight, counted in bytes, and how bodies are
/// read within it.
pub(crate) struct Budget {
    bytes: Arc<Semaphore>,
    total: u32,
    /// How long a body may take, and how long to wait for room in the budget.
    body_timeout: Duration,
    /// How long a refused request's body is read and thrown away, so that the client, still
    /// sending, gets to read the refusal instead of a reset connection.
    drain_time: Duration,
}

impl Budget {
    pub(crate) fn new(total: usize, body_timeout: Duration, drain_time: Duration) -> Self {
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        Budget {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
            body_timeout,
            drain_time,
        }
    }

    /// Waits (at most the body timeout) until `bytes` fit the budget, and reserves them.
    pub(crate) async fn reserve(&self, bytes: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        let n = u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.total);
        match tokio::time::timeout(self.body_timeout, self.bytes.clone().acquire_many_owned(n))
            .await
        {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::new(
                ErrorCode::Unavailable,
                "the server is busy with other transfers; try again in a moment",
            )),
        }
    }

    /// Refuses a request whose body was not read: first reads and throws away a body of at
    /// most `max` bytes for a short while (nothing is kept), so that the client gets to read
    /// the answer; a larger or slower one is left, and the connection closed after the answer.
    pub(crate) async fn refuse(&self, mut body: Body, max: usize, error: ApiError) -> ApiError {
        if body.size_hint().lower() > max as u64 {
            return error;
        }
        let drain = async {
            let mut seen = 0usize;
            while let Some(Ok(frame)) =
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            {
                if let Some(data) = frame.data_ref() {
                    seen += data.len();
                    if seen > max {
                        break;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(self.drain_time, drain).await;
        error
    }

    /// Reads a request body of at most `limit` bytes within the body timeout, after
    /// reserving twice its announced size (the body, and a copy while it is checked). A body
    /// announced larger than `limit` is refused before a byte of it is kept.
    pub(crate) async fn read(
        &self,
        mut body: Body,
        limit: usize,
        too_large: impl FnOnce() -> ApiError,
    ) -> Result<(Bytes, Option<OwnedSemaphorePermit>), ApiError> {
        let hint = body.size_hint();
        if hint.lower() > limit as u64 {
            let drain = limit.saturating_mul(2).max(DRAIN_AT_LEAST);
            return Err(self.refuse(body, drain, too_large()).await);
        }
        if hint.upper() == Some(0) {
            return Ok((Bytes::new(), None));
        }
        // Without a length (chunked), the largest allowed body is reserved.
        let expected = hint
            .upper()
            .map_or(limit, |n| usize::try_from(n).unwrap_or(limit).min(limit));
        let permit = self.reserve(expected.saturating_mul(2)).await?;
        let mut buf: Vec<u8> = Vec::with_capacity(expected);
        let read = async {
            while let Some(frame) =
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            {
                let frame =
                    frame.map_err(|_| ApiError::malformed("the request body could not be read"))?;
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > limit {
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Ok(())
        };
        match tokio::time::timeout(self.body_timeout, read).await {
            Ok(Ok(())) => Ok((Bytes::from(buf), Some(permit))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ApiError::new(
                ErrorCode::TooSlow,
                format!(
                    "the request body did not arrive within {} s; send less at a time on a slow link",
                    self.body_timeout.as_secs()
                ),
            )),
        }
    }
}

/// A `429 rate_limited` answer asking to wait `wait` (rounded up to whole seconds).
pub(crate) fn rate_limited(wait: Duration, what: &str) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let mut error = ApiError::new(
        ErrorCode::RateLimited,
        format!("{what}; wait {secs} s before trying again"),
    );
    error.retry_after = Some(secs);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_upload_slot_is_forgotten_however_its_users_end() {
        let uploads = Uploads::default();
        let author = DeviceId([1; 32]);
        let wait = Duration::from_millis(50);
        let upload = uploads.begin(author, [1; 16], wait).await.unwrap();
        // A status that times out while the upload runs, and one dropped mid-wait (its
        // connection closed), leave the entry to the upload alone.
        uploads.settled(author, [1; 16], wait).await;
        let dropped = uploads.begin(author, [1; 16], Duration::from_secs(60));
        let polled = tokio::time::timeout(wait, dropped).await;
        assert!(polled.is_err(), "the slot is held");
        assert_eq!(uploads.tracked(), 1);
        // A waiter still waiting when the upload ends gets the slot, then gives it up.
        let waiter = uploads.begin(author, [1; 16], Duration::from_secs(5));
        let ended = async move {
            tokio::time::sleep(wait).await;
            drop(upload);
        };
        let (next, ()) = tokio::join!(waiter, ended);
        assert!(next.is_some());
        assert_eq!(uploads.tracked(), 1);
        drop(next);
        assert_eq!(uploads.tracked(), 0);
        // The upload ends while a status waits, and the status is dropped before it runs.
        let upload = uploads.begin(author, [2; 16], wait).await.unwrap();
        let mut waiter = Box::pin(uploads.begin(author, [2; 16], Duration::from_secs(60)));
        assert!(tokio::time::timeout(wait, &mut waiter).await.is_err());
        drop(upload);
        drop(waiter);
        assert_eq!(uploads.tracked(), 0);
        // Many blobs, each waited on and dropped: nothing stays.
        for i in 0..1000u16 {
            let mut blob = [0; 16];
            blob[..2].copy_from_slice(&i.to_be_bytes());
            uploads.settled(author, blob, wait).await;
        }
        assert_eq!(uploads.tracked(), 0);
    }

    #[test]
    fn buckets_allow_a_burst_then_the_rate() {
        let buckets = TokenBuckets::new(2.0, 3, 10);
        for _ in 0..3 {
            assert!(buckets.check(&1).is_ok());
            assert!(buckets.take(&1).is_ok());
        }
        assert!(
            buckets.check(&1).is_err(),
            "checking takes nothing, and sees the empty bucket"
        );
        let (left, next) = buckets.level(&1);
        assert_eq!(left, 0);
        assert!(next <= Duration::from_millis(500), "{next:?}");
        let wait = buckets.take(&1).unwrap_err();
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        assert_eq!(buckets.level(&7).0, 3, "an unseen key has a full bucket");
        assert!(buckets.take(&2).is_ok(), "keys are independent");
    }

    #[test]
    fn buckets_track_a_bounded_number_of_keys() {
        let buckets = TokenBuckets::new(0.001, 1, 2);
        assert!(buckets.take(&1).is_ok());
        assert!(buckets.take(&2).is_ok());
        // Both are empty, so neither can be forgotten: a third key must wait.
        assert!(buckets.take(&3).is_err());
        let fresh = TokenBuckets::new(1000.0, 1, 2);
        assert!(fresh.take(&1).is_ok());
        assert!(fresh.take(&2).is_ok());
        std::thread::sleep(Duration::from_millis(5));
        assert!(fresh.take(&3).is_ok(), "full buckets are forgotten");
    }

    #[test]
    fn in_flight_counts_and_releases() {
        let in_flight = InFlight::new(2);
        let d = DeviceId([1; 32]);
        let (here, there): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let a = in_flight.enter(d, here).unwrap();
        let _b = in_flight.enter(d, here).unwrap();
        assert!(in_flight.enter(d, here).is_none());
        assert!(in_flight.enter(DeviceId([2; 32]), here).is_some());
        assert!(
            in_flight.enter(d, there).is_some(),
            "another address counts apart"
        );
        drop(a);
        assert!(in_flight.enter(d, here).is_some());
    }

    #[tokio::test]
    async fn bodies_are_bounded_before_and_while_reading() {
        let budget = Budget::new(100, Duration::from_millis(50), Duration::from_millis(50));
        let big = || ApiError::new(ErrorCode::TooLarge, "too large");
        let (bytes, permit) = budget
            .read(Body::from(vec![1u8; 40]), 50, big)
            .await
            .unwrap();
        assert_eq!(bytes.len(), 40);
        assert_eq!(
            permit.as_ref().map(OwnedSemaphorePermit::num_permits),
            Some(80)
        );
        // The budget is held: another 40-byte body cannot start until it is released.
        let err = budget
            .read(Body::from(vec![1u8; 40]), 50, big)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Unavailable);
        drop(permit);
        let err = budget
            .read(Body::from(vec![1u8; 60]), 50, big)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::TooLarge);
        let (empty, none) = budget.read(Body::empty(), 50, big).await.unwrap();
        assert!(empty.is_empty() && none.is_none());
    }
}
