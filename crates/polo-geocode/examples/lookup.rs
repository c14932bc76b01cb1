//! Prints what the offline geocoder says about the positions given as
//! `LAT,LON` arguments, one JSON line each.
//!
//! `cargo run --release -p polo-geocode --example lookup -- 47.3769,8.5417 46.415,6.60`

use polo_domain::Coord;
use polo_geocode::Geocoder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let geocoder = Geocoder::builtin()?;
    for argument in std::env::args().skip(1) {
        let coord = Coord::parse_lat_lon_text(&argument)?;
        let location = geocoder.lookup(coord);
        println!("{argument}\t{}", serde_json::to_string(&location)?);
    }
    Ok(())
}
