// The few libtorch autocast entry points tch does not bind (it only
// switches CUDA autocast on, at its default fp16): enabling autocast for a
// device type with a chosen dtype (bf16), and the nesting/cache calls that
// torch.autocast's context manager makes. Declared here rather than
// through <ATen/autocast_mode.h> (which pulls in all of ATen) — the
// signatures are libtorch 2.11's `at::autocast` functions, exported by
// libtorch_cpu.so.
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace at {
namespace autocast {
bool is_autocast_enabled(c10::DeviceType device_type);
void set_autocast_enabled(c10::DeviceType device_type, bool enabled);
c10::ScalarType get_autocast_dtype(c10::DeviceType device_type);
void set_autocast_dtype(c10::DeviceType device_type, c10::ScalarType dtype);
void clear_cache();
int increment_nesting();
int decrement_nesting();
}  // namespace autocast
}  // namespace at

static c10::DeviceType device_of(int cuda) { return cuda ? c10::DeviceType::CUDA : c10::DeviceType::CPU; }

extern "C" {
int chess_autocast_is_enabled(int cuda) { return at::autocast::is_autocast_enabled(device_of(cuda)) ? 1 : 0; }
int chess_autocast_get_dtype(int cuda) { return static_cast<int>(at::autocast::get_autocast_dtype(device_of(cuda))); }
void chess_autocast_set(int cuda, int enabled, int dtype) {
    at::autocast::set_autocast_enabled(device_of(cuda), enabled != 0);
    at::autocast::set_autocast_dtype(device_of(cuda), static_cast<c10::ScalarType>(dtype));
}
int chess_autocast_increment_nesting() { return at::autocast::increment_nesting(); }
int chess_autocast_decrement_nesting() { return at::autocast::decrement_nesting(); }
void chess_autocast_clear_cache() { at::autocast::clear_cache(); }
}
