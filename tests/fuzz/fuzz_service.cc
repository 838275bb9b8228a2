// libFuzzer: one of our services (FUZZ_SERVICE, a full name) fed arbitrary
// bytes and structure-aware mutations of every request type, through a real
// mesh in this process: the real interceptor (authentication, bounds, rate
// limits), the real domain, a real PostgreSQL database (PG* environment, as
// tools/test provides). Whatever comes in, every call ends with a status;
// nothing aborts the process, nothing trips AddressSanitizer.
//
// Input: [method selector][flags][payload]. flags bit 0: call as a plain
// user instead of the admin; bit 1: send the payload bytes as they are
// instead of parsing and re-encoding them as the request type.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <google/protobuf/struct.pb.h>
#include <grpcpp/generic/generic_stub.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <memory>
#include <random>
#include <string>

#include "orchestrator/common/v1/options.pb.h"
#include "spdlog/spdlog.h"
#include "tests/support/test_mesh.h"

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

struct Target {
  std::unique_ptr<orchestrator::testing::TestMesh> mesh;
  std::string user_token;
  std::string user_id;
  std::string mesh_credential;
  const google::protobuf::ServiceDescriptor* service = nullptr;
  std::unique_ptr<grpc::GenericStub> stub;
};

Target& TheTarget() {
  static Target* t = [] {
    spdlog::set_level(spdlog::level::warn);  // one info line per call would drown the fuzzer
    auto* target = new Target;
    target->service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(FUZZ_SERVICE);
    if (target->service == nullptr) __builtin_trap();
    target->mesh =
        std::make_unique<orchestrator::testing::TestMesh>("all", [](orchestrator::MeshConfig& c) {
          c.rate_limit_per_token = {1e5, 1e5};  // on, but not what is being fuzzed
          c.rate_limit_per_user = {1e5, 1e5};
          c.agent_connect_timeout = std::chrono::milliseconds(2000);
        });
    std::tie(target->user_id, target->user_token) = target->mesh->NewUser("fuzzer");
    target->mesh_credential = target->mesh->mesh_credential();
    target->stub = std::make_unique<grpc::GenericStub>(target->mesh->channel());
    // libFuzzer ends a run with exit(): stop the mesh (and its in-flight
    // calls, which log) before the static destructors free spdlog's registry.
    // Handlers run in reverse order of registration, so this one runs first.
    std::atexit([] {
      TheTarget().stub.reset();
      TheTarget().mesh.reset();
    });
    return target;
  }();
  return *t;
}

std::unique_ptr<Message> NewRequest(const google::protobuf::MethodDescriptor* m) {
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(m->input_type());
  return std::unique_ptr<Message>(prototype->New());
}

const google::protobuf::MethodDescriptor* MethodOf(uint8_t selector) {
  const auto* s = TheTarget().service;
  return s->method(selector % s->method_count());
}

grpc::Status CallUnary(const std::string& method, const std::string& token,
                       const std::string& act_for, const std::string& payload) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  ctx.AddMetadata("authorization", "Bearer " + token);
  if (!act_for.empty()) ctx.AddMetadata("x-orchestrator-act-for", act_for);
  grpc::Slice slice(payload.data(), payload.size());
  grpc::ByteBuffer request(&slice, 1), response;
  std::promise<grpc::Status> done;
  TheTarget().stub->UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                              [&](grpc::Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

// A streaming call: the request, then whatever comes within a short deadline.
grpc::Status CallStreaming(const std::string& method, const std::string& token,
                           const std::string& act_for, const std::string& payload) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  ctx.AddMetadata("authorization", "Bearer " + token);
  if (!act_for.empty()) ctx.AddMetadata("x-orchestrator-act-for", act_for);
  grpc::CompletionQueue cq;
  auto call = TheTarget().stub->PrepareCall(&ctx, method, &cq);
  void* tag;
  bool ok;
  auto next = [&] { return cq.Next(&tag, &ok) && ok; };
  call->StartCall(reinterpret_cast<void*>(1));
  grpc::Status status;
  if (next()) {
    grpc::Slice slice(payload.data(), payload.size());
    grpc::ByteBuffer request(&slice, 1);
    call->Write(request, reinterpret_cast<void*>(2));
    if (next()) {
      call->WritesDone(reinterpret_cast<void*>(3));
      next();
      grpc::ByteBuffer response;
      for (int i = 0; i < 16; ++i) {
        call->Read(&response, reinterpret_cast<void*>(4));
        if (!next()) break;
      }
    }
  }
  call->Finish(&status, reinterpret_cast<void*>(5));
  while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(5)) {
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

// Values that have broken parsers, clocks and paths before.
const std::string& HostileString(std::mt19937& rng) {
  static const std::string kValues[] = {
      "",
      std::string(1 << 20, 'A'),
      "../../etc/passwd",
      "file:///etc/passwd",
      "http://127.0.0.1:5432/",
      "https://user:pass@example.com/r.git",
      "evil\u202Etxt",
      std::string("nul\0byte", 8),
      "line\nbreak\r\x1b[2J",
      "*",
      "project.*",
      "prj_does_not_exist",
      "usr_nobody",
      "\xf0\x9f\x92\xa9\xf0\x9f\x92\xa9",
      std::string(129, 'x'),
  };
  return kValues[rng() % std::size(kValues)];
}

void MutateField(Message* m, std::mt19937& rng, int depth);

void MutateMessageField(Message* sub, std::mt19937& rng, int depth) {
  const Descriptor* d = sub->GetDescriptor();
  const Reflection* r = sub->GetReflection();
  if (d->full_name() == "google.protobuf.Duration" ||
      d->full_name() == "google.protobuf.Timestamp") {
    const int64_t seconds[] = {
        0, -1, 1, 315576000000, 315576000001, -315576000001, 253402300800, INT64_MAX, INT64_MIN};
    const int32_t nanos[] = {0, -1, 1, 999999999, 1000000000, INT32_MIN};
    r->SetInt64(sub, d->field(0), seconds[rng() % std::size(seconds)]);
    r->SetInt32(sub, d->field(1), nanos[rng() % std::size(nanos)]);
    return;
  }
  if (d->full_name() == "google.protobuf.Struct") {
    auto* s = static_cast<google::protobuf::Struct*>(sub);
    google::protobuf::Value* v = &(*s->mutable_fields())[HostileString(rng).substr(0, 64)];
    for (int i = 0, n = static_cast<int>(rng() % 50); i < n; ++i) {
      v = &(*v->mutable_struct_value()->mutable_fields())["k"];
    }
    const double numbers[] = {-1, 0, 1e308, -1e308, 0.5, 3};
    if (rng() % 2) {
      v->set_number_value(numbers[rng() % std::size(numbers)]);
    } else {
      v->set_string_value(HostileString(rng));
    }
    return;
  }
  MutateField(sub, rng, depth + 1);
}

void MutateField(Message* m, std::mt19937& rng, int depth) {
  const Descriptor* d = m->GetDescriptor();
  if (d->field_count() == 0 || depth > 6) return;
  const FieldDescriptor* f = d->field(rng() % d->field_count());
  const Reflection* r = m->GetReflection();
  if (f->is_repeated()) {
    const int n = rng() % 4 == 0 ? 200 : 1;
    for (int i = 0; i < n; ++i) {
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_STRING:
          r->AddString(m, f, HostileString(rng));
          break;
        case FieldDescriptor::CPPTYPE_MESSAGE:
          MutateMessageField(r->AddMessage(m, f), rng, depth);
          break;
        case FieldDescriptor::CPPTYPE_ENUM:
          r->AddEnumValue(m, f, static_cast<int>(rng() % 20) - 2);
          break;
        case FieldDescriptor::CPPTYPE_INT32:
          r->AddInt32(m, f, static_cast<int32_t>(rng()));
          break;
        case FieldDescriptor::CPPTYPE_INT64:
          r->AddInt64(m, f, static_cast<int64_t>(rng()) << 32);
          break;
        default:
          break;
      }
    }
    return;
  }
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      r->SetString(m, f, HostileString(rng));
      break;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      MutateMessageField(r->MutableMessage(m, f), rng, depth);
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      r->SetEnumValue(m, f, static_cast<int>(rng() % 20) - 2);
      break;
    case FieldDescriptor::CPPTYPE_INT32: {
      const int32_t v[] = {0, -1, 1, INT32_MAX, INT32_MIN, 100000};
      r->SetInt32(m, f, v[rng() % std::size(v)]);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      const int64_t v[] = {0, -1, 1, INT64_MAX, INT64_MIN};
      r->SetInt64(m, f, v[rng() % std::size(v)]);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT32:
      r->SetUInt32(m, f, rng() % 2 ? 0 : UINT32_MAX);
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      r->SetUInt64(m, f, rng() % 2 ? 0 : UINT64_MAX);
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      r->SetBool(m, f, rng() % 2);
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      const double v[] = {0, -1, 1e308, -1e308, 0.5};
      r->SetDouble(m, f, v[rng() % std::size(v)]);
      break;
    }
    default:
      break;
  }
}

}  // namespace

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

// Half the time libFuzzer's byte mutations; otherwise the payload decoded as
// the selected method's request, one field set to a hostile value, encoded.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  std::mt19937 rng(seed);
  if (size < 2 || rng() % 2 == 0) return LLVMFuzzerMutate(data, size, max_size);
  auto request = NewRequest(MethodOf(data[0]));
  if (!request->ParseFromArray(data + 2, static_cast<int>(size - 2))) request->Clear();
  MutateField(request.get(), rng, 0);
  std::string payload = request->SerializeAsString();
  if (payload.size() + 2 > max_size) return LLVMFuzzerMutate(data, size, max_size);
  data[1] &= ~2u;  // keep it structured
  std::copy(payload.begin(), payload.end(), data + 2);
  return payload.size() + 2;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  Target& t = TheTarget();
  const auto* method = MethodOf(data[0]);
  // Who calls: the user, the admin, or the mesh itself (acting for the
  // user or not), so the mesh-only RPCs' domains are reached too.
  const bool as_mesh =
      (data[1] & 4) || method->options().GetExtension(orchestrator::common::v1::access).mesh_only();
  const std::string& token = as_mesh         ? t.mesh_credential
                             : (data[1] & 1) ? t.user_token
                                             : t.mesh->admin_token();
  const std::string act_for = as_mesh && (data[1] & 8) ? t.user_id : "";
  std::string payload(reinterpret_cast<const char*>(data + 2), size - 2);
  if (!(data[1] & 2)) {
    auto request = NewRequest(method);
    if (request->ParseFromString(payload)) payload = request->SerializeAsString();
  }
  const std::string path = "/" + t.service->full_name() + "/" + method->name();
  grpc::Status status = method->client_streaming() || method->server_streaming()
                            ? CallStreaming(path, token, act_for, payload)
                            : CallUnary(path, token, act_for, payload);
  // A request the interceptor refuses is refused for a reason it names.
  if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT && status.error_message().empty()) {
    __builtin_trap();
  }
  return 0;
}
