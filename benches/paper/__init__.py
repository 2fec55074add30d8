"""The paper's experiment, rerunnable (issue 9): DICOM C-STORE between test hosts in
network namespaces over IPv4, IPv6 and a mixed IPv4/IPv6 network, protected by
nothing, TLS 1.2/1.3, mutual TLS, TLS plus securepdu integrity, IPsec (strongSwan),
WireGuard, or a pair of securepdu gateways; securepdu, pynetdicom and dcmtk side by
side. ``python -m benches.paper [--quick]`` as root; see benches/paper/run.py."""
