//! Work spread over the cores (opening a page of changes, loading a checkpoint's documents).

/// `work` on every item, spread over the cores, the answers in the items' order; `lost`
/// stands in for each answer of a worker that died, so answers stay in step.
pub(crate) fn on_all_cores<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> R + Sync,
    lost: impl Fn() -> R,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let worker = scope.spawn(move || part.iter().map(work).collect::<Vec<_>>());
                (part.len(), worker)
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|(len, worker)| {
                worker
                    .join()
                    .unwrap_or_else(|_| (0..len).map(|_| lost()).collect())
            })
            .collect()
    })
}
