// bpfsim: the one error type shared by every module.
//
// Parsers throw bpfsim::Error; public entry points return Result<T>.
// A trap while a program runs is not an Error: it is a status value (vm::Trap).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace bpfsim {

enum class ErrorCode {
    Io,              // a file could not be read or written
    Parse,           // malformed text input (assembly, .data, scenario)
    InvalidInsn,     // an instruction failed validation
    InvalidElf,      // malformed or unsupported ELF object
    InvalidBtf,      // malformed BTF
    Unsupported,     // well-formed but not (yet) supported
    NotFound,        // a named program, section, map or file does not exist
    Usage,           // bad command-line use
    Internal,        // a bug in bpfsim
};

const char* to_string(ErrorCode code);

// Where an error happened. Every part is optional; what is known is printed.
struct Location {
    std::string file;
    std::string section;
    std::optional<std::size_t> pc;     // instruction index within the program
    std::optional<std::size_t> line;   // line in a text file (assembly, .data, scenario)
    std::string source;                // source line from line_info, "file.c:42: text"

    bool empty() const { return file.empty() && section.empty() && !pc && !line && source.empty(); }
    std::string str() const;           // "file.o: section 'xdp': pc 12" style
};

class Error : public std::runtime_error {
public:
    Error(ErrorCode code, std::string message, Location where = {})
        : std::runtime_error(message), code_(code), message_(std::move(message)), where_(std::move(where)) {}

    ErrorCode code() const { return code_; }
    const std::string& message() const { return message_; }
    const Location& where() const { return where_; }
    Location& where() { return where_; }

    // "file: section 'x': pc 3: message"
    std::string describe() const;

private:
    ErrorCode code_;
    std::string message_;
    Location where_;
};

// A value or an Error. Small on purpose: C++20 has no std::expected.
template <class T>
class Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return get_or_throw(); }
    const T& value() const& { return const_cast<Result*>(this)->get_or_throw(); }
    T&& value() && { return std::move(get_or_throw()); }
    T* operator->() { return &get_or_throw(); }
    const T* operator->() const { return &value(); }
    T& operator*() { return get_or_throw(); }
    const T& operator*() const { return value(); }

    const Error& error() const { return std::get<1>(v_); }

private:
    T& get_or_throw() {
        if (!ok()) throw std::get<1>(v_);
        return std::get<0>(v_);
    }
    std::variant<T, Error> v_;
};

// A failed system call thrown by the standard library (std::filesystem's filesystem_error is
// one) as an Io error; a filesystem_error's path becomes the location's file.
Error io_error(const std::system_error& e);

// Runs f and turns a thrown Error, or a system error of the standard library, into a Result.
template <class F>
auto catch_error(F&& f) -> Result<decltype(f())> {
    try {
        return f();
    } catch (const Error& e) {
        return e;
    } catch (const std::system_error& e) {
        return io_error(e);
    }
}

}  // namespace bpfsim
