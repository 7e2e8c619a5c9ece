//! Identifiers. OpenStack services use UUIDs; Keystone spells them without dashes.

/// A new random id in Keystone's spelling: 32 lowercase hex digits.
pub fn hex_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A new random id in the dashed UUID spelling (Nova, Neutron, Glance, Cinder).
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An `x-openstack-request-id` value: `req-` followed by a dashed UUID.
pub fn request_id() -> String {
    format!("req-{}", uuid::Uuid::new_v4())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_are_32_hex_digits_and_unique() {
        let a = hex_id();
        let b = hex_id();
        assert_eq!(a.len(), 32);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn request_ids_have_openstack_shape() {
        let r = request_id();
        assert!(r.starts_with("req-"));
        assert_eq!(r.len(), 4 + 36);
    }
}
