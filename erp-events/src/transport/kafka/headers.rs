//! A Kafka record's headers, read whatever their names hold. rdkafka 0.39's accessors
//! (`Headers::try_get`, `iter`) panic on a header name that is not UTF-8, and any client can
//! write one: a name is read here through librdkafka's C API and decoded lossily (invalid bytes
//! become U+FFFD, as Java's client decodes them).

use std::borrow::Cow;
use std::ffi::{CStr, c_char, c_void};
use std::ptr;

use rdkafka::message::BorrowedMessage;
use rdkafka_sys as rdsys;

/// One header: its name (lossily UTF-8) and its value.
pub type Header<'a> = (Cow<'a, str>, Option<&'a [u8]>);

/// The headers of `message`, in order, without panicking on a name that is not UTF-8 (as
/// rdkafka's own accessors do).
pub fn headers<'a>(message: &'a BorrowedMessage<'_>) -> Vec<Header<'a>> {
    each_header(message).collect()
}

/// [`headers`], one by one, without collecting them.
pub(crate) fn each_header<'a>(
    message: &'a BorrowedMessage<'_>,
) -> impl Iterator<Item = Header<'a>> + 'a {
    let mut native: *mut rdsys::rd_kafka_headers_t = ptr::null_mut();
    // SAFETY: `message.ptr()` is the live librdkafka message `message` borrows; on success
    // `native` points to headers the message owns, valid while `message` is (not freed here).
    let found = unsafe { rdsys::rd_kafka_message_headers(message.ptr(), &mut native) };
    let count =
        if found != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || native.is_null() {
            0
        } else {
            // SAFETY: `native` is valid (above).
            unsafe { rdsys::rd_kafka_header_cnt(native) }
        };
    (0..count).map_while(move |index| {
        let (mut name, mut value, mut size): (*const c_char, *const c_void, usize) =
            (ptr::null(), ptr::null(), 0);
        // SAFETY: `native` is valid and `index` is below its count; the out-pointers are ours.
        let read = unsafe {
            rdsys::rd_kafka_header_get_all(native, index, &mut name, &mut value, &mut size)
        };
        if read != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            return None;
        }
        // SAFETY: librdkafka keeps each name NUL-terminated and each value `size` bytes long
        // (or null) inside the message's headers, which outlive `'a`.
        let (name, value) = unsafe {
            (
                CStr::from_ptr(name).to_string_lossy(),
                (!value.is_null()).then(|| std::slice::from_raw_parts(value.cast::<u8>(), size)),
            )
        };
        Some((name, value))
    })
}
