//! The libtorch engine. This part: device selection and the
//! environment facts `doctor` prints.
pub mod device;
