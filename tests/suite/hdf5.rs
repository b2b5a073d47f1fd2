#![cfg(feature = "hdf5")]
