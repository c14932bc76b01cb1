//! Zones as place names: a zone is a place someone named and drew, so the
//! timeline calls the visits inside it by the zone's name.
//!
//! This is how a family shares places: a group's "Grandma's" zone names the
//! visits of every member whose own timeline has not named that place
//! otherwise (`polo_derived::places`). When zones overlap, the smallest one
//! that holds the position names it (the "Kitchen" inside "Home"), then a
//! personal zone before a group's, then the older zone.

use crate::geometry::Shape;
use crate::zone::ZoneSpec;

/// A zone that can name positions.
#[derive(Debug, Clone, PartialEq)]
pub struct NamingZone {
    /// The zone's id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The group it belongs to, `None` for a personal zone.
    pub group: Option<i64>,
    shape: Shape,
    area_m2: f64,
    /// `(south, west, north, east)`, degrees ([`Shape::bbox`]).
    bbox: (f64, f64, f64, f64),
}

impl NamingZone {
    /// Whether `p` (`[lat, lon]`) is inside the zone.
    #[must_use]
    pub fn holds(&self, p: [f64; 2]) -> bool {
        let (s, w, n, e) = self.bbox;
        if p[0] < s || p[0] > n {
            return false;
        }
        // The box may reach past ±180° for a zone across the antimeridian.
        let lon = w + (p[1] - w).rem_euclid(360.0);
        lon <= e && self.shape.signed_distance_m(p) <= 0.0
    }
}

/// The zones a user's places may be named after: their own and those of
/// their groups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZoneNames {
    zones: Vec<NamingZone>,
}

impl ZoneNames {
    /// Indexes `zones` as `(id, group, spec)`.
    #[must_use]
    pub fn new(zones: impl IntoIterator<Item = (i64, Option<i64>, ZoneSpec)>) -> Self {
        let mut zones: Vec<NamingZone> = zones
            .into_iter()
            .map(|(id, group, spec)| NamingZone {
                id,
                name: spec.name.trim().to_owned(),
                group,
                area_m2: spec.shape.area_m2(),
                bbox: spec.shape.bbox(0.0),
                shape: spec.shape,
            })
            .filter(|z| !z.name.is_empty())
            .collect();
        // The first zone that holds a position names it.
        zones.sort_by(|a, b| {
            a.area_m2.total_cmp(&b.area_m2).then(a.group.is_some().cmp(&b.group.is_some())).then(a.id.cmp(&b.id))
        });
        Self { zones }
    }

    /// The zone that names `p` (`[lat, lon]`): the smallest that holds it.
    #[must_use]
    pub fn at(&self, p: [f64; 2]) -> Option<&NamingZone> {
        self.zones.iter().find(|z| z.holds(p))
    }

    /// How many zones can name positions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// Whether no zone can name anything.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::M_PER_DEG;
    use crate::machine::Rules;

    fn circle(name: &str, center: [f64; 2], radius_m: f64) -> ZoneSpec {
        ZoneSpec {
            name: name.to_owned(),
            shape: Shape::Circle { center, radius_m },
            rules: Rules::default(),
            origin: None,
        }
    }

    fn north(p: [f64; 2], m: f64) -> [f64; 2] {
        [p[0] + m / M_PER_DEG, p[1]]
    }

    const HOME: [f64; 2] = [48.137, 11.575];

    #[test]
    fn the_smallest_zone_holding_a_position_names_it() {
        let names = ZoneNames::new([
            (1, None, circle("Neighbourhood", HOME, 2_000.0)),
            (2, Some(7), circle("Grandma's", HOME, 60.0)),
            (3, None, circle("  ", HOME, 10.0)),
        ]);
        assert_eq!(names.len(), 2, "a blank name names nothing");
        assert_eq!(names.at(HOME).map(|z| z.name.as_str()), Some("Grandma's"));
        assert_eq!(names.at(HOME).and_then(|z| z.group), Some(7));
        assert_eq!(names.at(north(HOME, 500.0)).map(|z| z.id), Some(1));
        assert_eq!(names.at(north(HOME, 2_100.0)), None);
    }

    #[test]
    fn a_personal_zone_wins_over_a_group_zone_of_the_same_size() {
        let names =
            ZoneNames::new([(9, Some(1), circle("Family home", HOME, 80.0)), (12, None, circle("Home", HOME, 80.0))]);
        assert_eq!(names.at(HOME).map(|z| z.name.as_str()), Some("Home"));
    }

    #[test]
    fn polygons_and_the_antimeridian() {
        let fiji = [-17.0, 179.999];
        let names = ZoneNames::new([(1, None, circle("Dateline", fiji, 500.0))]);
        assert_eq!(names.at([-17.0, -179.999]).map(|z| z.id), Some(1), "across ±180°");
        assert_eq!(names.at([-17.0, -179.99]), None, "1.2 km east of the centre");
        assert_eq!(names.at([-17.0, 179.99]), None, "1 km west of it");

        let d = 100.0 / M_PER_DEG;
        let dl = d / HOME[0].to_radians().cos();
        let square = ZoneSpec {
            name: "Office".into(),
            shape: Shape::Polygon {
                vertices: vec![
                    [HOME[0] - d, HOME[1] - dl],
                    [HOME[0] - d, HOME[1] + dl],
                    [HOME[0] + d, HOME[1] + dl],
                    [HOME[0] + d, HOME[1] - dl],
                ],
            },
            rules: Rules::default(),
            origin: None,
        };
        let names = ZoneNames::new([(4, None, square), (5, None, circle("Campus", HOME, 300.0))]);
        assert_eq!(names.at(north(HOME, 90.0)).map(|z| z.name.as_str()), Some("Office"), "40,000 m² < 282,743 m²");
        assert_eq!(names.at(north(HOME, 150.0)).map(|z| z.name.as_str()), Some("Campus"));
    }
}
