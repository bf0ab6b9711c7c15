# Network security groups and the Application Gateway.  Clients reach
# the gateway on 443 (80 only redirects); the nodes accept node_port
# from the gateway's subnet alone.  The gateway ends TLS with the Key
# Vault certificate and connects to the primaries over TLS, checking
# their certificate (the same one) against hostname.  Secondaries reach
# the primaries through the gateway, as clients do.

locals {
  # /subscriptions/S/resourceGroups/RG/providers/Microsoft.Network/
  # virtualNetworks/VNET/subnets/SUBNET
  gw_parts = split("/", var.gateway_subnet_id)
}

data "azurerm_subnet" "gateway" {
  name                 = local.gw_parts[10]
  virtual_network_name = local.gw_parts[8]
  resource_group_name  = local.gw_parts[4]
}

resource "azurerm_network_security_group" "node" {
  name                = "${var.name}-node"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags

  security_rule {
    name                       = "terrace-from-gateway"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = tostring(var.node_port)
    source_address_prefixes    = data.azurerm_subnet.gateway.address_prefixes
    destination_address_prefix = "*"
  }
  security_rule {
    name                       = "nothing-else-from-the-network"
    priority                   = 4000
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "VirtualNetwork"
    destination_address_prefix = "*"
  }
}

resource "azurerm_network_security_group" "gateway" {
  name                = "${var.name}-gateway"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags

  security_rule {
    name                       = "https-and-redirect-from-clients"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = ["443", "80"]
    source_address_prefixes    = var.allowed_cidrs
    destination_address_prefix = "*"
  }
  # required by Application Gateway v2 (its control plane)
  security_rule {
    name                       = "gateway-manager"
    priority                   = 110
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "65200-65535"
    source_address_prefix      = "GatewayManager"
    destination_address_prefix = "*"
  }
  security_rule {
    name                       = "nothing-else-from-the-internet"
    priority                   = 4000
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "Internet"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "gateway" {
  subnet_id                 = var.gateway_subnet_id
  network_security_group_id = azurerm_network_security_group.gateway.id
}

resource "azurerm_public_ip" "app" {
  name                = "${var.name}-app"
  resource_group_name = var.resource_group_name
  location            = var.location
  allocation_method   = "Static"
  sku                 = "Standard"
  zones               = var.zones
  tags                = var.tags
}

resource "azurerm_application_gateway" "app" {
  name                = "${var.name}-app"
  resource_group_name = var.resource_group_name
  location            = var.location
  zones               = var.zones
  tags                = var.tags

  sku {
    name     = "Standard_v2"
    tier     = "Standard_v2"
    capacity = 2
  }
  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.gateway.id]
  }
  gateway_ip_configuration {
    name      = "gateway"
    subnet_id = var.gateway_subnet_id
  }
  frontend_ip_configuration {
    name                 = "public"
    public_ip_address_id = azurerm_public_ip.app.id
  }
  frontend_port {
    name = "https"
    port = 443
  }
  frontend_port {
    name = "http"
    port = 80
  }
  ssl_certificate {
    name                = "app"
    key_vault_secret_id = data.azurerm_key_vault_certificate.tls.versionless_secret_id
  }
  ssl_policy {
    policy_type = "Predefined"
    policy_name = "AppGwSslPolicy20220101"
  }

  # the primaries (or the demo node)
  backend_address_pool {
    name         = "primaries"
    ip_addresses = azurerm_network_interface.primary[*].private_ip_address
  }
  probe {
    name                = "health"
    protocol            = "Https"
    host                = var.hostname
    path                = "/_health_check"
    interval            = 10
    timeout             = 5
    unhealthy_threshold = 2
    match {
      status_code = ["200"]
    }
  }
  backend_http_settings {
    name                  = "nodes"
    protocol              = "Https"
    port                  = var.node_port
    host_name             = var.hostname
    cookie_based_affinity = "Disabled"
    # long polls of secondaries and streamed logs
    request_timeout = 3600
    probe_name      = "health"
  }

  http_listener {
    name                           = "https"
    frontend_ip_configuration_name = "public"
    frontend_port_name             = "https"
    protocol                       = "Https"
    ssl_certificate_name           = "app"
  }
  request_routing_rule {
    name                       = "https"
    priority                   = 100
    rule_type                  = "Basic"
    http_listener_name         = "https"
    backend_address_pool_name  = "primaries"
    backend_http_settings_name = "nodes"
  }

  # port 80: a redirect to https, nothing else
  http_listener {
    name                           = "http"
    frontend_ip_configuration_name = "public"
    frontend_port_name             = "http"
    protocol                       = "Http"
  }
  redirect_configuration {
    name                 = "to-https"
    redirect_type        = "Permanent"
    target_listener_name = "https"
    include_path         = true
    include_query_string = true
  }
  request_routing_rule {
    name                        = "http"
    priority                    = 200
    rule_type                   = "Basic"
    http_listener_name          = "http"
    redirect_configuration_name = "to-https"
  }

  depends_on = [azurerm_role_assignment.certificate_reader,
  azurerm_subnet_network_security_group_association.gateway]
}
