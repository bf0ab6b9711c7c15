# The secondaries: one virtual machine scale set of identical instances
# (one custom data), sized by secondary_count and spread over the
# zones.  Scale-in sends a termination notification (a scheduled
# event); the instance's drain watcher (templates/node.sh) drains the
# node (SIGTERM, then waits for the plans and applies in hand) and
# approves the event.  Azure waits at most 15 minutes for that.

resource "azurerm_linux_virtual_machine_scale_set" "secondary" {
  count               = var.external_services ? 1 : 0
  name                = "${var.name}-secondaries"
  resource_group_name = var.resource_group_name
  location            = var.location
  sku                 = var.secondary_vm_size
  instances           = var.secondary_count
  zones               = var.zones
  upgrade_mode        = "Manual"
  admin_username      = "azureuser"
  custom_data         = base64encode(local.secondary_user_data)
  tags                = var.tags

  admin_ssh_key {
    username   = "azureuser"
    public_key = var.ssh_public_key
  }
  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Premium_LRS"
    disk_size_gb         = var.os_disk_size
  }
  source_image_reference {
    publisher = local.image.publisher
    offer     = local.image.offer
    sku       = local.image.sku
    version   = local.image.version
  }
  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.secondary.id]
  }
  network_interface {
    name                      = "node"
    primary                   = true
    network_security_group_id = azurerm_network_security_group.node.id
    ip_configuration {
      name      = "node"
      primary   = true
      subnet_id = var.node_subnet_id
    }
  }
  termination_notification {
    enabled = true
    timeout = "PT15M"
  }

  # the primaries answer before the first secondary joins
  depends_on = [azurerm_application_gateway.app,
  azurerm_linux_virtual_machine.primary, azurerm_role_assignment.secret_reader]
}
