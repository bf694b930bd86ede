// Background threads (libvirt event loop, releaser) and the bridge that
// carries libvirt callbacks to JS through thread-safe functions.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <thread>

#include "common.h"

namespace lv {

bool StartEventLoop() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    virInitialize();
    virSetErrorFunc(nullptr, IgnoreError);
    // Must happen before the first virConnectOpen: the remote driver only
    // watches its socket (events, keepalive, EOF) when an event loop exists.
    if (virEventRegisterDefaultImpl() < 0) return;
    ok = true;
    // Detached and invisible to libuv, so it never keeps node alive.
    std::thread([] {
      for (;;) {
        if (virEventRunDefaultImpl() < 0) {
          virResetLastError();
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    }).detach();
  });
  return ok;
}

namespace {
// Heap-allocated and never destroyed: the thread may still be waiting on the
// condition variable while static destructors run at process exit.
struct Releaser {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> queue;

  void Loop() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [this] { return !queue.empty(); });
        fn = std::move(queue.front());
        queue.pop_front();
      }
      fn();
    }
  }
};
}  // namespace

void ReleaseLater(std::function<void()> fn) {
  static Releaser* r = [] {
    auto* created = new Releaser();
    std::thread([created] { created->Loop(); }).detach();
    return created;
  }();
  {
    std::lock_guard<std::mutex> lock(r->mu);
    r->queue.push_back(std::move(fn));
  }
  r->cv.notify_one();
}

// ---- Sink -------------------------------------------------------------------

void Deliver(Napi::Env env, Napi::Function cb, void*, Delivery* d) {
  std::unique_ptr<Delivery> owned(d);
  // env is NULL when the TSFN is torn down with items still queued.
  if (static_cast<napi_env>(env) == nullptr || cb.IsEmpty()) return;
  try {
    (*owned)(env, cb);
  } catch (const Napi::Error& e) {
    // A throwing listener behaves like one on an EventEmitter: Node 20 would
    // otherwise only print a deprecation warning and drop the exception.
    napi_fatal_exception(env, e.Value());
  }
}

Sink* Sink::Create(Napi::Env env, Napi::Function cb, const char* name) {
  auto sink = std::make_unique<Sink>();
  sink->tsfn_ = DeliveryTsfn::New(env, cb, name, 0, 1, nullptr,
                                  &Sink::Finalize, sink.get());
  sink->tsfn_.Unref(env);  // a listener alone must not keep the process alive
  return sink.release();
}

void Sink::Post(const Delivery& d) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!tsfnAlive_ || released_) return;
  auto* item = new Delivery(d);
  if (tsfn_.NonBlockingCall(item) != napi_ok) delete item;
}

void Sink::Release() {
  bool last;
  {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    if (tsfnAlive_) tsfn_.Release();  // Finalize follows on the JS thread
    last = !tsfnAlive_;
  }
  if (last) delete this;
}

void Sink::Finalize(Napi::Env, Sink* self, void*) {
  bool last;
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    self->tsfnAlive_ = false;
    last = self->released_;
  }
  if (last) delete self;
}

// ---- Fanout -----------------------------------------------------------------

Fanout::~Fanout() {
  for (auto& entry : sinks_) entry.second->Release();
}

int Fanout::Add(Sink* sink) {
  std::lock_guard<std::mutex> lock(mu_);
  int id = nextId_++;
  sinks_.emplace_back(id, sink);
  if (sticky_) sink->Post(sticky_);
  return id;
}

bool Fanout::Remove(int id) {
  Sink* sink = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = sinks_.begin(); it != sinks_.end(); ++it) {
      if (it->first != id) continue;
      sink = it->second;
      sinks_.erase(it);
      break;
    }
  }
  if (sink == nullptr) return false;
  sink->Release();
  return true;
}

void Fanout::Post(const Delivery& d, bool sticky) {
  std::lock_guard<std::mutex> lock(mu_);
  if (sticky) sticky_ = d;
  for (auto& entry : sinks_) entry.second->Post(d);
}

void* Fanout::NewRef(const std::shared_ptr<Fanout>& f) {
  return new std::shared_ptr<Fanout>(f);
}

Fanout& Fanout::From(void* opaque) {
  return **static_cast<std::shared_ptr<Fanout>*>(opaque);
}

void Fanout::FreeRef(void* opaque) {
  delete static_cast<std::shared_ptr<Fanout>*>(opaque);
}

// ---- libvirt callbacks (event loop thread, or the thread that saw EOF) ----

int OnLifecycle(virConnectPtr, virDomainPtr dom, int event, int detail,
                void* opaque) {
  // dom is only valid during this call: copy what JS needs (both local reads).
  char uuid[VIR_UUID_STRING_BUFLEN] = "";
  virDomainGetUUIDString(dom, uuid);
  const char* name = virDomainGetName(dom);
  Fanout::From(opaque).Post(
      [uuid = std::string(uuid), name = std::string(name ? name : ""), event,
       detail](Napi::Env env, Napi::Function cb) {
        Napi::Object ev = Napi::Object::New(env);
        ev.Set("uuid", uuid);
        ev.Set("name", name);
        ev.Set("event", event);
        ev.Set("detail", detail);
        cb.Call({ev});
      });
  return 0;
}

// libvirt calls this at most once per registration, then frees the opaque.
void OnConnectionClosed(virConnectPtr, int reason, void* opaque) {
  Fanout::From(opaque).Post(
      [reason](Napi::Env env, Napi::Function cb) {
        cb.Call({Napi::Number::New(env, reason)});
      },
      /*sticky=*/true);
}

}  // namespace lv
