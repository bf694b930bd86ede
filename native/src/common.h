// Shared pieces of the libvirt binding: error capture, the promise-returning
// worker used by every libvirt call, and the JS listener bridge.
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <napi.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace lv {

// ---- errors (errors.cc) ---------------------------------------------------

// Plain copy of a virError. libvirt keeps the last error in thread-local
// storage, so it must be copied on the thread that made the failing call.
struct ErrorInfo {
  int code = VIR_ERR_INTERNAL_ERROR;
  int domain = VIR_FROM_NONE;
  int level = VIR_ERR_ERROR;
  std::string message;
};

ErrorInfo CaptureLastError();  // call right after the failing libvirt call
ErrorInfo ClosedError();       // for calls on a Connection after close()
Napi::Value MakeError(Napi::Env env, const ErrorInfo& e);  // -> LibvirtError
Napi::Value Rejected(Napi::Env env, const ErrorInfo& e);   // rejected promise
void SetErrorClass(const Napi::CallbackInfo& info);
void IgnoreError(void* userData, virErrorPtr error);  // virSetErrorFunc target

// ---- per-environment data (binding.cc) ------------------------------------

struct AddonData {
  Napi::FunctionReference errorClass;  // LibvirtError, set from index.js
  Napi::FunctionReference connectionClass;
  Napi::FunctionReference domainClass;
};
AddonData& Data(Napi::Env env);

// ---- process-wide threads (events.cc) -------------------------------------

// Registers libvirt's default event loop and runs it on a detached thread.
// Returns false if libvirt refused to register it. Idempotent.
bool StartEventLoop();

// Runs fn on a background thread. Finalizers use it because dropping the
// last reference to a connection does a blocking RPC.
void ReleaseLater(std::function<void()> fn);

// ---- async calls ----------------------------------------------------------

struct None {};

// One libvirt call on the libuv thread pool, settled as a promise.
// work: runs on the pool; returns false when the libvirt call failed, and must
//       not call libvirt again after the failure (every libvirt entry point
//       resets the thread's last error).
// done: runs on the JS thread on success and builds the resolved value.
// release: runs on the pool after the error was captured (drops references).
template <typename T>
class Call : public Napi::AsyncWorker {
 public:
  using Work = std::function<bool(T&)>;
  using Done = std::function<Napi::Value(Napi::Env, T&)>;

  static Napi::Value Start(Napi::Env env, Work work, Done done,
                           std::function<void()> release = nullptr) {
    auto* call =
        new Call(env, std::move(work), std::move(done), std::move(release));
    Napi::Promise promise = call->deferred_.Promise();
    call->Queue();  // AsyncWorker deletes itself after OnOK
    return promise;
  }

 private:
  Call(Napi::Env env, Work work, Done done, std::function<void()> release)
      : Napi::AsyncWorker(env, "libvirt"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)),
        release_(std::move(release)) {}

  void Execute() override {
    virResetLastError();  // pool threads are reused; drop any stale error
    failed_ = !work_(value_);
    if (failed_) error_ = CaptureLastError();
    if (release_) release_();
  }

  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (failed_)
      deferred_.Reject(MakeError(Env(), error_));
    else
      deferred_.Resolve(done_(Env(), value_));
  }

  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  std::function<void()> release_;
  T value_{};
  bool failed_ = false;
  ErrorInfo error_;
};

inline Napi::Value Undefined(Napi::Env env, None&) { return env.Undefined(); }

// ---- JS listeners called from libvirt threads (events.cc) -----------------

using Delivery = std::function<void(Napi::Env, Napi::Function)>;
void Deliver(Napi::Env env, Napi::Function cb, void*, Delivery* d);
using DeliveryTsfn = Napi::TypedThreadSafeFunction<void, Delivery, Deliver>;

// Carries deliveries to one JS callback. It has two owners: its Fanout,
// until it calls Release(), and Node, until the thread-safe function is
// finalized (which also happens when the JS environment shuts down).
// Whichever lets go last deletes it; the mutex keeps other threads off a
// finalized TSFN.
class Sink {
 public:
  static Sink* Create(Napi::Env env, Napi::Function cb, const char* name);
  void Post(const Delivery& d);  // any thread
  void Release();                // owner is done with it; any thread

 private:
  static void Finalize(Napi::Env env, Sink* self, void*);
  std::mutex mu_;
  DeliveryTsfn tsfn_;
  bool tsfnAlive_ = true;
  bool released_ = false;
};

// The JS listeners behind one libvirt callback registration. libvirt refuses
// to register the same C callback twice on a connection, so each connection
// registers once (at open) and fans out here. Shared by the Connection and
// libvirt's registration (whose opaque is a heap std::shared_ptr<Fanout>).
class Fanout {
 public:
  ~Fanout();
  int Add(Sink* sink);    // JS thread; returns the listener id
  bool Remove(int id);    // JS thread
  // Any thread. A sticky delivery is also replayed to listeners added later
  // (for one-shot sources such as the close callback).
  void Post(const Delivery& d, bool sticky = false);

  static void* NewRef(const std::shared_ptr<Fanout>& f);
  static Fanout& From(void* opaque);
  static void FreeRef(void* opaque);  // virFreeCallback

 private:
  std::mutex mu_;
  std::vector<std::pair<int, Sink*>> sinks_;
  int nextId_ = 1;
  Delivery sticky_;
};

// libvirt callbacks; opaque is a Fanout ref.
int OnLifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
                void* opaque);
void OnConnectionClosed(virConnectPtr conn, int reason, void* opaque);

// ---- argument helpers ----------------------------------------------------

inline std::string StringArg(const Napi::CallbackInfo& info, size_t i,
                             const char* name) {
  if (!info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

inline unsigned int FlagsArg(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsUndefined()) return 0;
  if (!info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), "flags must be a number");
  return info[i].As<Napi::Number>().Uint32Value();
}

inline Napi::Function FunctionArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsFunction())
    throw Napi::TypeError::New(info.Env(), "callback must be a function");
  return info[i].As<Napi::Function>();
}

// ---- classes --------------------------------------------------------------

// What a worker learns about a domain, so uuid/name need no later call.
struct DomainInfo {
  virDomainPtr dom = nullptr;
  std::string uuid;
  std::string name;
};
bool Describe(virDomainPtr dom, DomainInfo& out);  // false if dom is NULL

class Domain : public Napi::ObjectWrap<Domain> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Value NewInstance(Napi::Env env, DomainInfo& info);
  explicit Domain(const Napi::CallbackInfo& info);
  ~Domain() override;

 private:
  template <typename T>
  Napi::Value Run(Napi::Env env, std::function<bool(virDomainPtr, T&)> work,
                  typename Call<T>::Done done);
  template <int (*F)(virDomainPtr)>
  Napi::Value Simple(const Napi::CallbackInfo& info);
  template <int (*F)(virDomainPtr, unsigned int)>
  Napi::Value WithFlags(const Napi::CallbackInfo& info);
  Napi::Value GetState(const Napi::CallbackInfo& info);
  Napi::Value GetXMLDesc(const Napi::CallbackInfo& info);
  Napi::Value IsActive(const Napi::CallbackInfo& info);

  virDomainPtr dom_ = nullptr;
};

// A connection's own callback registrations, made once at open.
struct Registrations {
  int lifecycleId = -1;            // -1: driver has no lifecycle events
  std::shared_ptr<Fanout> lifecycle;
  std::shared_ptr<Fanout> closed;  // NULL: driver has no close callback
};

class Connection : public Napi::ObjectWrap<Connection> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Connection(const Napi::CallbackInfo& info);
  ~Connection() override;

 private:
  template <typename T>
  Napi::Value Run(Napi::Env env, std::function<bool(virConnectPtr, T&)> work,
                  typename Call<T>::Done done);

  static Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsAlive(const Napi::CallbackInfo& info);
  template <virDomainPtr (*F)(virConnectPtr, const char*)>
  Napi::Value DomainFrom(const Napi::CallbackInfo& info);
  Napi::Value ListAllDomains(const Napi::CallbackInfo& info);
  Napi::Value GetLibVersion(const Napi::CallbackInfo& info);
  Napi::Value OnLifecycleEvent(const Napi::CallbackInfo& info);
  Napi::Value OffLifecycleEvent(const Napi::CallbackInfo& info);
  Napi::Value OnClose(const Napi::CallbackInfo& info);
  Napi::Value OffClose(const Napi::CallbackInfo& info);
  Napi::Value AddListener(const Napi::CallbackInfo& info,
                          const std::shared_ptr<Fanout>& fanout, const char* name);
  Napi::Value RemoveListener(const Napi::CallbackInfo& info,
                             const std::shared_ptr<Fanout>& fanout);

  virConnectPtr conn_ = nullptr;  // NULL once close() started
  Registrations regs_;
};

}  // namespace lv
