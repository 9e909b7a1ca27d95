//! Property tests: airlock's parsers and checks on generated input, against real oracles
//! where one exists (Python's `packaging` for PEP 440), and for no panic and bounded
//! memory on arbitrary and hostile input.

mod pep440;
