// The BPF objects a differential test's arguments name: a file, or every .o under a directory
// (the fuzz-found malformed ones in an `invalid/` directory left out).
#pragma once

#include <filesystem>
#include <vector>

namespace bpfsim::testing {

// Adds what arg names to files; false when it names nothing.
inline bool add_objects(const std::filesystem::path& arg, std::vector<std::filesystem::path>& files) {
    if (std::filesystem::is_directory(arg)) {
        for (const auto& e : std::filesystem::recursive_directory_iterator(arg))
            if (e.is_regular_file() && e.path().extension() == ".o" && e.path().string().find("/invalid/") == std::string::npos)
                files.push_back(e.path());
        return true;
    }
    if (!std::filesystem::exists(arg)) return false;
    files.push_back(arg);
    return true;
}

}  // namespace bpfsim::testing
