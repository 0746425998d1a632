//! The C ABI of `csrc/dist.cpp` (c10d: TCPStore, Gloo/NCCL process groups),
//! and the conversion of its error strings into [`TrainError::Dist`].
#![allow(unsafe_code)]

use std::ffi::{c_char, c_void, CStr};

use tch::Tensor;

use crate::{Result, TrainError};

extern "C" {
    pub fn chess_dist_free_error(msg: *mut c_char);
    pub fn chess_dist_nccl_compiled() -> i32;
    pub fn chess_dist_init(
        host: *const c_char,
        port: i32,
        rank: i32,
        world: i32,
        agent_store: i32,
        prefix: *const c_char,
        nccl: i32,
        device_index: i32,
        timeout_ms: i64,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    pub fn chess_dist_destroy(group: *mut c_void);
    pub fn chess_dist_all_reduce_sum(group: *mut c_void, t: *const c_void) -> *mut c_char;
    pub fn chess_dist_broadcast(group: *mut c_void, t: *const c_void, root: i32) -> *mut c_char;
    pub fn chess_dist_all_gather(group: *mut c_void, out: *const c_void, input: *const c_void) -> *mut c_char;
    pub fn chess_dist_barrier(group: *mut c_void) -> *mut c_char;
}

/// Turns the shim's error message (malloc'd, or NULL) into a Result.
pub(super) fn check(what: &str, msg: *mut c_char) -> Result<()> {
    if msg.is_null() {
        return Ok(());
    }
    // SAFETY: a NUL-terminated string from the shim, freed by the shim's own free.
    let text = unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned();
    unsafe { chess_dist_free_error(msg) };
    // c10d messages carry a C++ backtrace after "Exception raised from": keep the message.
    let head = text.split("Exception raised from").next().unwrap_or(&text);
    let head: Vec<&str> = head.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut msg = format!("{what}: {}", head.join(" "));
    if msg.to_lowercase().contains("timed out") {
        msg.push_str(" (a peer did not answer within --dist-timeout / CHESS_DIST_TIMEOUT)");
    }
    Err(TrainError::Dist(msg))
}

pub(super) fn ptr(t: &Tensor) -> *const c_void {
    t.as_ptr() as *const c_void
}
