//! placeholder until the e2e test lands
