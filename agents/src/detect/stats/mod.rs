//! Streaming statistical detectors (robust baseline, isolation forest,
//! k-means, ensemble). Pure logic; the detect actor drives them.
