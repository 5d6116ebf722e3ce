//! The extract path must not allocate for a configured lane: it runs on every request.
//!
//! A counting global allocator; the whole binary is this one test, so nothing else allocates
//! on the measured thread while it runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use graylane_core::{Lane, LaneContext, LaneFutureExt, LaneSet, Propagator};
use http::{HeaderMap, HeaderValue};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// A test-only counting allocator is the one place unsafe is needed: GlobalAlloc is an unsafe
// trait. SAFETY: delegates to the system allocator; only counts calls on the current thread.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

#[test]
fn extract_inject_and_context_paths_do_not_allocate() {
    let gray = Lane::new("gray").unwrap();
    let propagator = Propagator::new(LaneSet::new([gray, Lane::new("blue").unwrap()]));
    let mut by_header = HeaderMap::new();
    by_header.insert("x-gray-lane", HeaderValue::from_static("gray"));
    let mut by_baggage = HeaderMap::new();
    by_baggage.insert(
        "baggage",
        HeaderValue::from_static("user=1, gray.lane=gray;p=1"),
    );
    // Warm up: the first attach grows the thread-local stack once, and a thread's first read
    // of the propagator's lanes (an `ArcSwap`) registers the thread with arc-swap once.
    drop(LaneContext::new(gray).attach());
    let _ = propagator.extract(&by_header);

    let n = allocations(|| {
        for _ in 0..1000 {
            let a = propagator.extract(&by_header);
            let b = propagator.extract(&by_baggage);
            assert_eq!((a.lane(), b.lane()), (gray, gray));
            let _g = a.attach();
            assert_eq!(graylane_core::current_lane(), gray);
        }
    });
    assert_eq!(n, 0, "extracting a configured lane allocated {n} times");

    // Injecting into a carrier with no baggage yet stores interned names and values by
    // reference: nothing is copied.
    let mut outbound = HeaderMap::with_capacity(16);
    let gray_ctx = LaneContext::new(gray);
    let n = allocations(|| {
        for _ in 0..100 {
            outbound.clear();
            propagator.inject(&gray_ctx, &mut outbound);
        }
    });
    assert_eq!(
        n, 0,
        "injecting into an empty HeaderMap allocated {n} times"
    );
    assert_eq!(outbound["baggage"], "gray.lane=gray");

    let waker = std::task::Waker::noop();
    let mut fut = std::pin::pin!(std::future::ready(()).with_lane(LaneContext::new(gray)));
    let n = allocations(|| {
        let _ = fut
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker));
    });
    assert_eq!(n, 0, "polling a WithLane allocated {n} times");
}
