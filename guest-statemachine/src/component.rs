//! The WebAssembly component: the `machine` export, and `migration` in
//! rules that change the state's layout. Built `no_std` so that
//! it imports nothing at all: no WASI, no clock, no randomness.

use crate::BatchHeader;
use crate::exports::wallet::statemachine::machine::Guest;
use alloc::vec::Vec;

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// A panic is a bug in the rules: trap, and let the host fail the batch.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// The canonical ABI's allocator, through which the host passes arguments
/// in. wit-bindgen supplies it only on targets other than wasm32-wasip2.
#[unsafe(no_mangle)]
unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    use alloc::alloc::{Layout, alloc, realloc};
    if new_len == 0 {
        return align as *mut u8;
    }
    // SAFETY: the canonical ABI passes a power-of-two alignment and, for a
    // reallocation, the pointer and size of an earlier allocation.
    let ptr = unsafe {
        if old_len == 0 {
            alloc(Layout::from_size_align_unchecked(new_len, align))
        } else {
            realloc(
                old,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if ptr.is_null() {
        core::arch::wasm32::unreachable()
    }
    ptr
}

/// Byte comparison, which the compiler emits for slice equality (account
/// ids in the batch's key index, receipt bodies). On this target it
/// normally comes from the C library, which a WASI-free component does not
/// link. Eight bytes at a time: read big-endian, two words order as their
/// bytes do. (Nothing here may compare slices, which would call itself.)
#[unsafe(no_mangle)]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, len: usize) -> i32 {
    let word = |p: *const u8, at: usize| {
        // SAFETY: the caller passes two readable ranges of `len` bytes, and
        // `at + 8 <= len`.
        u64::from_be_bytes(unsafe { p.add(at).cast::<[u8; 8]>().read_unaligned() })
    };
    let mut at = 0;
    while at + 8 <= len {
        let (x, y) = (word(a, at), word(b, at));
        if x != y {
            return if x < y { -1 } else { 1 };
        }
        at += 8;
    }
    while at < len {
        // SAFETY: as above, `at < len`.
        let (x, y) = unsafe { (*a.add(at), *b.add(at)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        at += 1;
    }
    0
}

struct Machine;

impl Guest for Machine {
    fn prefetch(header: BatchHeader, calls: Vec<u8>, values: Vec<u8>) -> Vec<u8> {
        crate::prefetch(&header, &calls, &values)
    }

    fn execute(header: BatchHeader, calls: Vec<u8>, values: Vec<u8>) -> Vec<u8> {
        crate::execute(&header, &calls, &values)
    }
}

impl crate::exports::wallet::statemachine::splitting::Guest for Machine {
    fn owners(records: Vec<u8>) -> Vec<u8> {
        crate::owners(&records)
    }
}

#[cfg(feature = "compact-accounts")]
impl crate::exports::wallet::statemachine::migration::Guest for Machine {
    fn migrate(records: Vec<u8>) -> Vec<u8> {
        crate::migrate(&records)
    }
}

crate::export!(Machine with_types_in crate);
