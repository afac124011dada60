//! Compute device selection. The CPU backend (`flex`) is the default; GPU backends are cargo
//! features (`wgpu`, `vulkan`, `cuda`) and are chosen with `--device` or `BURN_DEVICE`.

use burn::prelude::*;

/// Names accepted by [`device`], depending on the compiled features.
pub fn available() -> Vec<&'static str> {
    let mut v = vec!["cpu"];
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "vulkan") {
        v.push("vulkan");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
}

/// The device for `name` (`cpu`, `wgpu`, `vulkan`, `cuda`), or an error naming what is available.
pub fn device(name: &str) -> Result<Device, String> {
    let name = name.to_ascii_lowercase();
    if !available().contains(&name.as_str()) {
        return Err(format!(
            "device {name:?} is not available in this build (available: {}; GPU devices need the matching cargo feature)",
            available().join(", ")
        ));
    }
    let burn_name = if name == "cpu" { "flex" } else { name.as_str() };
    // Burn picks the backend from BURN_DEVICE for the default device.
    // SAFETY-free: single-threaded at startup, before any device is created.
    unsafe { std::env::set_var("BURN_DEVICE", burn_name) };
    Ok(Device::default())
}
