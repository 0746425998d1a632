// PyTorch's c10d (the engine under torch.distributed) for chess-train:
// a TCPStore (own server on rank 0, or a client of torchrun's agent store
// wrapped in a PrefixStore, as torch.distributed does), a Gloo (CPU) or
// NCCL (CUDA, compiled only with CHESS_DIST_NCCL) process group, and the
// four collectives the trainer uses. The environment is read on the Rust
// side (src/dist.rs); this file only builds objects and runs collectives.
//
// Every entry point catches C++ exceptions and returns them as a malloc'd
// message (NULL on success) that Rust turns into a TrainError and frees
// with chess_dist_free_error. Tensors arrive as tch's `at::Tensor*`.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CHESS_DIST_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace {

struct Group {
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<c10d::Backend> backend;
    std::chrono::milliseconds timeout;
    bool nccl;
    int device_index;
};

char* message(const std::string& what) {
    char* m = static_cast<char*>(std::malloc(what.size() + 1));
    if (m != nullptr) std::memcpy(m, what.c_str(), what.size() + 1);
    return m;
}

template <typename F>
char* guarded(F&& f) {
    try {
        f();
        return nullptr;
    } catch (const std::exception& e) {
        return message(e.what());
    } catch (...) {
        return message("unknown C++ exception");
    }
}

void wait(Group* g, const c10::intrusive_ptr<c10d::Work>& work) {
    if (!work->wait(g->timeout)) {
        throw std::runtime_error("collective did not complete within the timeout");
    }
}

}  // namespace

extern "C" {

void chess_dist_free_error(char* msg) { std::free(msg); }

int chess_dist_nccl_compiled() {
#ifdef CHESS_DIST_NCCL
    return 1;
#else
    return 0;
#endif
}

// Connects the store and creates the process group. `agent_store`: the
// launcher (torchrun) already serves the TCPStore at host:port, so every
// rank is a client and keys live under `prefix`; otherwise rank 0 serves it.
char* chess_dist_init(const char* host, int port, int rank, int world, int agent_store, const char* prefix, int nccl,
                      int device_index, long long timeout_ms, void** out) {
    return guarded([&] {
        auto timeout = std::chrono::milliseconds(timeout_ms);
        c10d::TCPStoreOptions opts;
        opts.port = static_cast<std::uint16_t>(port);
        opts.timeout = timeout;
        if (agent_store) {
            opts.isServer = false;
        } else {
            opts.isServer = rank == 0;
            opts.numWorkers = static_cast<std::size_t>(world);
        }
        auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
        c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
        store->setTimeout(timeout);
        auto g = std::make_unique<Group>();
        g->store = store;
        g->timeout = timeout;
        g->nccl = nccl != 0;
        g->device_index = device_index;
        if (nccl) {
#ifdef CHESS_DIST_NCCL
            auto o = c10d::ProcessGroupNCCL::Options::create();
            o->timeout = timeout;
            g->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, o);
#else
            throw std::runtime_error("this chess-train was built without NCCL (no CUDA/NCCL headers at build time)");
#endif
        } else {
            auto o = c10d::ProcessGroupGloo::Options::create(timeout);
            o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
            g->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, o);
        }
        *out = g.release();
    });
}

void chess_dist_destroy(void* group) { delete static_cast<Group*>(group); }

// In-place sum over all ranks.
char* chess_dist_all_reduce_sum(void* group, at::Tensor* t) {
    return guarded([&] {
        auto g = static_cast<Group*>(group);
        std::vector<at::Tensor> ts{*t};
        c10d::AllreduceOptions o;
        o.reduceOp = c10d::ReduceOp::SUM;
        o.timeout = g->timeout;
        wait(g, g->backend->allreduce(ts, o));
    });
}

// In place: every rank ends with root's values.
char* chess_dist_broadcast(void* group, at::Tensor* t, int root) {
    return guarded([&] {
        auto g = static_cast<Group*>(group);
        std::vector<at::Tensor> ts{*t};
        c10d::BroadcastOptions o;
        o.rootRank = root;
        o.rootTensor = 0;
        o.timeout = g->timeout;
        wait(g, g->backend->broadcast(ts, o));
    });
}

// `out` is `[world · n, …]` (contiguous); rank r's `input` `[n, …]` lands in rows r·n…
char* chess_dist_all_gather(void* group, at::Tensor* out, at::Tensor* input) {
    return guarded([&] {
        auto g = static_cast<Group*>(group);
        int world = g->backend->getSize();
        std::vector<at::Tensor> parts = out->chunk(world, 0);
        std::vector<std::vector<at::Tensor>> outputs{parts};
        std::vector<at::Tensor> inputs{*input};
        c10d::AllgatherOptions o;
        o.timeout = g->timeout;
        wait(g, g->backend->allgather(outputs, inputs, o));
        // Gloo may write into fresh tensors; make sure `out` holds the result.
        for (int r = 0; r < world; ++r) {
            if (outputs[0][r].data_ptr() != parts[r].data_ptr()) parts[r].copy_(outputs[0][r]);
        }
    });
}

char* chess_dist_barrier(void* group) {
    return guarded([&] {
        auto g = static_cast<Group*>(group);
        c10d::BarrierOptions o;
        o.timeout = g->timeout;
        if (g->nccl) o.device_ids = {static_cast<int64_t>(g->device_index)};
        wait(g, g->backend->barrier(o));
    });
}

}  // extern "C"
