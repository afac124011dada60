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
/// error naming what is available. One device only: lists are for training ([`devices`]).
pub fn device(name: &str) -> Result<Device, String> {
    if name.contains(',') {
        return Err(format!(
            "device {name:?}: one device expected here (a comma-separated list is for training only)"
        ));
    }
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

/// Backends with several numbered devices (`NAME:INDEX`).
const INDEXED: [&str; 4] = ["cuda", "wgpu", "vulkan", "libtorch-cuda"];

/// The devices of a comma-separated list, for data-parallel training (the first is the main
/// device). Each entry is a name of [`device`], optionally `NAME:INDEX` for backends with several
/// devices: `cuda:0,cuda:1` (CUDA device numbers), `wgpu:0,wgpu:1` and `vulkan:0,vulkan:1`
/// (discrete GPUs in the order wgpu lists them), `libtorch-cuda:0,libtorch-cuda:1`; a bare
/// name is that backend's default device. Every entry must use the same backend. `cpu,cpu`
/// (the CPU twice) is accepted to test the mechanism: both shards then share the same cores.
pub fn devices(list: &str) -> Result<Vec<Device>, String> {
    let entries: Vec<&str> = list.split(',').map(str::trim).collect();
    if entries.iter().any(|e| e.is_empty()) {
        return Err(format!(
            "device list {list:?}: an empty entry (expected e.g. cuda:0,cuda:1)"
        ));
    }
    let mut backend: Option<String> = None;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let lower = entry.to_ascii_lowercase();
        let (name, index) = match lower.split_once(':') {
            None => (lower.as_str(), None),
            Some((n, i)) => {
                let i = i.parse::<usize>().map_err(|_| {
                    format!("device {entry:?}: expected NAME:INDEX with a number, e.g. cuda:1")
                })?;
                (n, Some(i))
            }
        };
        // Validates the name and points Burn's default device at the backend.
        let default = device(name)?;
        match &backend {
            Some(b) if b != name => {
                return Err(format!(
                    "device list {list:?}: every device must use the same backend ({b} and {name})"
                ));
            }
            Some(_) => {}
            None => backend = Some(name.to_string()),
        }
        out.push(match index {
            None => default,
            Some(i) if INDEXED.contains(&name) => indexed(name, i)?,
            Some(_) => {
                return Err(format!(
                    "device {entry:?}: {name} has no numbered devices (list it without an index)"
                ));
            }
        });
    }
    Ok(out)
}

/// Device `index` of backend `name` (one of [`INDEXED`], already checked to be compiled in).
fn indexed(name: &str, index: usize) -> Result<Device, String> {
    #[cfg(feature = "cuda")]
    if name == "cuda" {
        return Ok(Device::cuda(index));
    }
    #[cfg(feature = "wgpu")]
    if name == "wgpu" {
        return Ok(Device::wgpu(DeviceKind::DiscreteGpu(index)));
    }
    #[cfg(feature = "vulkan")]
    if name == "vulkan" {
        return Ok(Device::vulkan(DeviceKind::DiscreteGpu(index)));
    }
    #[cfg(feature = "libtorch")]
    if name == "libtorch-cuda" {
        let count = tch::Cuda::device_count();
        if index as i64 >= count {
            return Err(format!(
                "device \"libtorch-cuda:{index}\": LibTorch sees {count} CUDA GPU(s)"
            ));
        }
        #[allow(deprecated)]
        return Ok(Device::new(burn::backend::LibTorchDevice::Cuda(index)));
    }
    Err(format!(
        "device \"{name}:{index}\" is not available in this build"
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_lists() {
        let two = devices("cpu, CPU").unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[0], two[1]);
        assert_eq!(devices("cpu").unwrap().len(), 1);
        for (bad, says) in [
            ("cpu,,cpu", "empty entry"),
            ("cpu:1", "no numbered devices"),
            ("cuda:x", "NAME:INDEX"),
            ("cpu,tpu", "\"tpu\" is not available"),
        ] {
            let e = devices(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let e = device("cpu,cpu").unwrap_err();
        assert!(e.contains("one device"), "{e}");
    }
}
