//! `clouds.yaml` for the all-in-one: the file `openstack --os-cloud strata` reads.

use anyhow::Context;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `clouds.yaml` (mode 0600) with clouds `strata` (admin) and `strata-demo`.
pub fn write(
    path: &Path,
    auth_url: &str,
    region: &str,
    admin_pw: &str,
    demo_pw: &str,
) -> anyhow::Result<()> {
    let text = format!(
        "# Written by `strata up`. Use: export OS_CLIENT_CONFIG_FILE={path}\n\
         clouds:\n\
         {admin}\
         {demo}",
        path = path.display(),
        admin = cloud("strata", auth_url, region, "admin", admin_pw, "admin"),
        demo = cloud("strata-demo", auth_url, region, "demo", demo_pw, "demo"),
    );
    let tmp = path.with_extension("yaml.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn cloud(name: &str, auth_url: &str, region: &str, user: &str, pw: &str, project: &str) -> String {
    format!(
        "  {name}:\n    auth:\n      auth_url: {auth_url}\n      username: {user}\n      password: \"{pw}\"\n      \
         project_name: {project}\n      user_domain_name: Default\n      project_domain_name: Default\n    \
         region_name: {region}\n    interface: public\n    identity_api_version: 3\n"
    )
}

/// Points an existing `clouds.yaml` at a new URL (the listener moved), keeping its passwords.
pub fn update_url(path: &Path, auth_url: &str) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut changed = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| match l.trim_start().strip_prefix("auth_url:") {
            Some(old) if old.trim() != auth_url => {
                changed = true;
                format!(
                    "{}auth_url: {auth_url}",
                    &l[..l.len() - l.trim_start().len()]
                )
            }
            _ => l.to_string(),
        })
        .collect();
    if changed {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all((out.join("\n") + "\n").as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn written_private_and_updatable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("clouds.yaml");
        write(&p, "http://127.0.0.1:1/identity", "RegionOne", "pw1", "pw2").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("  strata:\n"));
        assert!(text.contains("  strata-demo:\n"));
        assert!(text.contains("password: \"pw1\""));
        update_url(&p, "http://127.0.0.1:2/identity").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text.matches("auth_url: http://127.0.0.1:2/identity")
                .count(),
            2
        );
        assert!(text.contains("password: \"pw2\""));
    }
}
