"""Runtime pieces under the Container API: rootfs, namespaces, cgroups, security, net, console, start."""
