//! The OS random generator as the core's [`Entropy`]: CRAM-HMAC challenges, the crossed-connect
//! coin and new generation UUIDs must not be predictable.

use keelson_core::repl::conn::Entropy;

/// `getrandom(2)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, out: &mut [u8]) {
        // getrandom blocks until the pool is seeded and fails only on a broken kernel: there is
        // no safe fallback for authentication challenges.
        getrandom::getrandom(out).expect("the kernel's random generator");
    }
}
