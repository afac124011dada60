//! Compute device selection. The CPU backend (`flex`) is the default; GPU backends are cargo
//! features (`wgpu`, `vulkan`, `cuda`), and so is LibTorch (`libtorch`: PyTorch's C++ library
//! through Burn's `tch` backend, on the CPU or a CUDA GPU); they are chosen with `--device` or
//! `BURN_DEVICE`.

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
    if cfg!(feature = "libtorch") {
        v.extend(["libtorch", "libtorch-cuda"]);
    }
    v
}

/// The device for `name` (`cpu`, `wgpu`, `vulkan`, `cuda`, `libtorch`, `libtorch-cuda`), or an
/// error naming what is available.
pub fn device(name: &str) -> Result<Device, String> {
    let name = name.to_ascii_lowercase();
    if !available().contains(&name.as_str()) {
        return Err(format!(
            "device {name:?} is not available in this build (available: {}; GPU devices and LibTorch need the matching cargo feature)",
            available().join(", ")
        ));
    }
    #[cfg(feature = "libtorch")]
    if name == "libtorch-cuda" {
        if !tch::Cuda::is_available() {
            return Err(
                "device \"libtorch-cuda\": this LibTorch sees no CUDA GPU (a CPU-only LibTorch, or no driver)".into(),
            );
        }
        // Burn marks its LibTorch backend deprecated (in favour of its CubeCL backends, whose
        // CUDA build needs a download); it is the offline route to an NVIDIA GPU, so keep it.
        #[allow(deprecated)]
        return Ok(Device::new(burn::backend::LibTorchDevice::Cuda(0)));
    }
    let name = if name == "libtorch" {
        "tch"
    } else {
        name.as_str()
    };
    let burn_name = if name == "cpu" { "flex" } else { name };
    // Burn picks the backend from BURN_DEVICE for the default device.
    // SAFETY-free: single-threaded at startup, before any device is created.
    unsafe { std::env::set_var("BURN_DEVICE", burn_name) };
    Ok(Device::default())
}

/// Make glibc's allocator keep large freed blocks in the heap instead of returning them to the
/// kernel after every tensor op. By default blocks over 128 KiB–32 MiB are `mmap`ed and
/// `munmap`ed per allocation, so each op pays page faults and zeroing of fresh pages (a third of
/// a D-MPNN forward pass on 2 cores). Call once at start-up; a no-op elsewhere.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; it is called before other threads
    // allocate and takes plain integers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

/// Peak resident memory of this process in MiB (`VmHWM` from `/proc/self/status`; 0 where it
/// is not available). The benchmarks report it next to PyTorch's.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
