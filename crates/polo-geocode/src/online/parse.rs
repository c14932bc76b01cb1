//! From a provider's JSON to one street-level name.
//!
//! Both providers describe a position by OpenStreetMap tags; the name polo
//! shows is built the same way from either: the feature's own name (a shop,
//! a station) when it has one, then street and house number, then the
//! settlement, joined by commas and without repeats:
//! "Bahnhofstrasse 1, Zürich", "Zürich HB, Bahnhofplatz, Zürich".
//!
//! * Photon (`/reverse`) answers a GeoJSON `FeatureCollection`; the first
//!   feature's `properties` carry `name`, `street`, `housenumber` and the
//!   settlement in `city` (or `town`, `village`, `locality`, `district`).
//!   No feature means nothing is there: `None`.
//! * Nominatim (`/reverse?format=jsonv2`) answers one object with `name`
//!   and an `address` object (`road`, `house_number`, `city`/`town`/…), or
//!   `{"error": "Unable to geocode"}` when nothing is there: `None`.
//!   Without `address`, its `display_name` is used as it is.

use serde_json::Value;

use super::{OnlineError, Provider};

/// The name in a Photon response body.
pub(crate) fn photon(body: &[u8]) -> Result<Option<String>, OnlineError> {
    let bad = |what: &str| OnlineError::BadJson { provider: Provider::Photon, what: what.to_owned() };
    let json: Value = serde_json::from_slice(body).map_err(|error| bad(&format!("not JSON ({error})")))?;
    let features = json.get("features").and_then(Value::as_array).ok_or_else(|| bad("no `features` array"))?;
    let Some(feature) = features.first() else { return Ok(None) };
    let properties =
        feature.get("properties").and_then(Value::as_object).ok_or_else(|| bad("`features[0]` has no `properties`"))?;
    let text = |key: &str| properties.get(key).and_then(Value::as_str);
    let place = ["city", "town", "village", "locality", "district"].iter().find_map(|key| text(key));
    Ok(compose(text("name"), text("street"), text("housenumber"), place))
}

/// The name in a Nominatim `format=jsonv2` response body.
pub(crate) fn nominatim(body: &[u8]) -> Result<Option<String>, OnlineError> {
    let bad = |what: &str| OnlineError::BadJson { provider: Provider::Nominatim, what: what.to_owned() };
    let json: Value = serde_json::from_slice(body).map_err(|error| bad(&format!("not JSON ({error})")))?;
    let object = json.as_object().ok_or_else(|| bad("not a JSON object"))?;
    if object.contains_key("error") {
        return Ok(None);
    }
    let name = object.get("name").and_then(Value::as_str);
    let Some(address) = object.get("address").and_then(Value::as_object) else {
        return match object.get("display_name").and_then(Value::as_str) {
            Some(display) if !display.trim().is_empty() => Ok(Some(display.trim().to_owned())),
            _ => Err(bad("neither `address` nor `display_name`")),
        };
    };
    let text = |key: &str| address.get(key).and_then(Value::as_str);
    let road = ["road", "pedestrian", "footway", "path", "cycleway", "square"].iter().find_map(|key| text(key));
    let place = ["city", "town", "village", "hamlet", "municipality", "suburb"].iter().find_map(|key| text(key));
    Ok(compose(name, road, text("house_number"), place))
}

/// A part with its whitespace trimmed, if anything is left.
fn clean(part: Option<&str>) -> Option<&str> {
    part.map(str::trim).filter(|part| !part.is_empty())
}

/// "name, street number, place", skipping empty and repeated parts. A
/// street's own feature is named after the street: then the name is left out
/// and the street (with its number) stands for it.
fn compose(name: Option<&str>, street: Option<&str>, number: Option<&str>, place: Option<&str>) -> Option<String> {
    let (street, name) = (clean(street), clean(name));
    let name = name.filter(|name| Some(*name) != street);
    let street = street.map(|street| match clean(number) {
        Some(number) => format!("{street} {number}"),
        None => street.to_owned(),
    });
    let mut parts: Vec<String> = Vec::with_capacity(3);
    for part in [name.map(str::to_owned), street, clean(place).map(str::to_owned)].into_iter().flatten() {
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photon_house() {
        let body = br#"{"type":"FeatureCollection","features":[{"type":"Feature",
            "geometry":{"type":"Point","coordinates":[8.5398,47.3723]},
            "properties":{"osm_key":"building","street":"Bahnhofstrasse","housenumber":"1",
            "postcode":"8001","city":"Z\u00fcrich","country":"Schweiz"}}]}"#;
        assert_eq!(photon(body).unwrap().as_deref(), Some("Bahnhofstrasse 1, Zürich"));
    }

    #[test]
    fn photon_named_feature_and_street_feature() {
        let body =
            br#"{"features":[{"properties":{"name":"Z\u00fcrich HB","street":"Bahnhofplatz","city":"Z\u00fcrich"}}]}"#;
        assert_eq!(photon(body).unwrap().as_deref(), Some("Zürich HB, Bahnhofplatz, Zürich"));
        let street = br#"{"features":[{"properties":{"name":"Bahnhofstrasse","street":"Bahnhofstrasse","city":"Z\u00fcrich"}}]}"#;
        assert_eq!(photon(street).unwrap().as_deref(), Some("Bahnhofstrasse, Zürich"));
        let village = br#"{"features":[{"properties":{"name":"Sils","type":"city"}}]}"#;
        assert_eq!(photon(village).unwrap().as_deref(), Some("Sils"));
    }

    #[test]
    fn photon_nothing_there() {
        assert_eq!(photon(br#"{"type":"FeatureCollection","features":[]}"#).unwrap(), None);
        assert_eq!(photon(br#"{"features":[{"properties":{}}]}"#).unwrap(), None);
    }

    #[test]
    fn photon_bad_shapes_say_what_is_missing() {
        let error = photon(br#"{"type":"FeatureCollection"}"#).unwrap_err();
        assert_eq!(error.to_string(), "Photon answered with unusable JSON: no `features` array");
        let error = photon(br#"{"features":[{"type":"Feature"}]}"#).unwrap_err();
        assert!(error.to_string().contains("`features[0]` has no `properties`"), "{error}");
        let error = photon(b"<html>busy</html>").unwrap_err();
        assert!(error.to_string().contains("not JSON"), "{error}");
    }

    #[test]
    fn nominatim_house_and_amenity() {
        let body = br#"{"place_id":1,"category":"building","name":"",
            "display_name":"1, Bahnhofstrasse, Z\u00fcrich, Schweiz",
            "address":{"house_number":"1","road":"Bahnhofstrasse","suburb":"Altstadt","city":"Z\u00fcrich","country":"Schweiz"}}"#;
        assert_eq!(nominatim(body).unwrap().as_deref(), Some("Bahnhofstrasse 1, Zürich"));
        let body = br#"{"name":"Caf\u00e9 Spr\u00fcngli","address":{"road":"Bahnhofstrasse","house_number":"21","village":"Z"}}"#;
        assert_eq!(nominatim(body).unwrap().as_deref(), Some("Café Sprüngli, Bahnhofstrasse 21, Z"));
    }

    #[test]
    fn nominatim_nothing_there_and_fallbacks() {
        assert_eq!(nominatim(br#"{"error":"Unable to geocode"}"#).unwrap(), None);
        let body = br#"{"display_name":"Atlantic Ocean"}"#;
        assert_eq!(nominatim(body).unwrap().as_deref(), Some("Atlantic Ocean"));
        let error = nominatim(br#"{"place_id":1}"#).unwrap_err();
        assert_eq!(error.to_string(), "Nominatim answered with unusable JSON: neither `address` nor `display_name`");
        let error = nominatim(b"[]").unwrap_err();
        assert!(error.to_string().contains("not a JSON object"), "{error}");
    }
}
